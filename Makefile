# dsnscale: scale tests and simulation for DSN fleet control planes.
# `make help` lists the targets.

GO      ?= go
BIN     := bin/dsnscale
NAME    ?= smoke
SET     ?=
REPEAT  ?=
OUT     ?=
AXIS    ?=
BENCH   ?=
GOFLAGS ?=
export GOFLAGS

.PHONY: help build scenario sweep test bench lint clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## build the static dsnscale binary into bin/
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/dsnscale

scenario: build ## run a scenario: make scenario NAME=storm-restart [SET="dsns=5000 window=2s"] [REPEAT=5] [OUT=DIR]
	./$(BIN) run $(NAME) $(foreach s,$(SET),--set $(s)) $(if $(REPEAT),--repeat $(REPEAT)) $(if $(OUT),--out $(OUT))

sweep: build ## run a sweep: make sweep NAME=storm-restart AXIS="dsns=500,1000,2000" [REPEAT=3] [SET="rate=20/s"] [OUT=DIR]; NAME=capacity needs no AXIS
	./$(BIN) sweep $(NAME) $(foreach a,$(AXIS),--axis $(a)) $(if $(REPEAT),--repeat $(REPEAT)) $(foreach s,$(SET),--set $(s)) $(if $(OUT),--out $(OUT))

test: ## run the whole test suite, starting the real servers it needs
	./scripts/test.sh

bench: build ## run the benchmarks and print one JSON object (BENCH=cp for one area)
	./scripts/bench.sh $(BENCH)

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean: ## remove build output
	rm -rf bin
