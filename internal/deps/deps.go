//go:build deps

// Package deps pins the project's chosen dependencies while packages are being written.
package deps

import (
	_ "github.com/HdrHistogram/hdrhistogram-go"
	_ "github.com/VictoriaMetrics/VictoriaMetrics/lib/promutils"
	_ "github.com/blevesearch/bleve/v2"
	_ "github.com/elastic/go-elasticsearch/v8"
	_ "github.com/getkin/kin-openapi/openapi3"
	_ "github.com/golang-jwt/jwt/v5"
	_ "github.com/influxdata/influxdb-client-go/v2"
	_ "github.com/jackc/pgx/v5"
	_ "github.com/nats-io/nats-server/v2/server"
	_ "github.com/nats-io/nats.go"
	_ "github.com/nats-io/nats.go/jetstream"
	_ "github.com/ory/dockertest/v3"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/prometheus/tsdb"
	_ "github.com/stretchr/testify/require"
	_ "github.com/tsenart/vegeta/v12/lib"
	_ "github.com/vbauerster/mpb/v8"
	_ "golang.org/x/crypto/bcrypt"
	_ "golang.org/x/time/rate"
	_ "gopkg.in/yaml.v3"
	_ "modernc.org/sqlite"
	_ "pgregory.net/rapid"
)
