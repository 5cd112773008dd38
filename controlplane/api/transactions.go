package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/store"
)

// transactionRequest is the body of POST /api/v1/transactions.
type transactionRequest struct {
	Operations []transactionOp `json:"operations"`
}

type transactionOp struct {
	Op     string          `json:"op"`
	Object json.RawMessage `json:"object"`
}

// transactionResponse answers a committed (or dry-run) transaction.
type transactionResponse struct {
	Revision uint64              `json:"revision"`
	DryRun   bool                `json:"dryRun,omitempty"`
	Results  []transactionResult `json:"results"`
}

type transactionResult struct {
	Op     string        `json:"op"`
	Object *model.Object `json:"object"`
}

// decodeTransaction decodes and checks a transaction body: its shape, every operation's object,
// and that no two operations touch the same object. It returns the store ops and the field path
// of each operation's object.
func decodeTransaction(body []byte) ([]store.Op, []string, error) {
	var req transactionRequest
	if err := model.DecodeStrict(body, &req, ""); err != nil {
		return nil, nil, err
	}
	var errs model.FieldErrors
	switch n := len(req.Operations); {
	case n == 0:
		errs.Add("operations", "required: at least one operation")
		return nil, nil, &errs
	case n > MaxTransactionOps:
		errs.Add("operations", fmt.Sprintf("%d operations, at most %d", n, MaxTransactionOps))
		return nil, nil, &errs
	}
	ops := make([]store.Op, len(req.Operations))
	paths := make([]string, len(req.Operations))
	seen := make(map[model.Key]int, len(req.Operations))
	for i, top := range req.Operations {
		opPath := fmt.Sprintf("operations[%d]", i)
		paths[i] = opPath + ".object"
		if len(top.Object) == 0 || string(top.Object) == "null" {
			errs.Add(paths[i], "required")
			continue
		}
		obj, err := model.DecodeObject(top.Object)
		if err != nil {
			appendErr(&errs, paths[i], err)
			continue
		}
		var op store.Op
		var fe *model.FieldErrors
		switch store.OpType(top.Op) {
		case store.OpCreate, store.OpUpdate:
			op, fe = prepareWrite(store.OpType(top.Op), obj, target{})
		case store.OpDelete:
			op, fe = prepareDelete(obj, obj.Metadata.ResourceVersion)
		case "":
			errs.Add(opPath+".op", "required: create, update or delete")
			continue
		default:
			errs.Add(opPath+".op", fmt.Sprintf("must be create, update or delete, got %q", top.Op))
			continue
		}
		if fe != nil {
			errs.Append(paths[i], fe)
			continue
		}
		key := op.Object.Key()
		if first, dup := seen[key]; dup {
			errs.Add(paths[i], fmt.Sprintf("%s is already touched by operations[%d]; a transaction touches each object once", key, first))
			continue
		}
		seen[key] = i
		ops[i] = op
	}
	if errs.Len() > 0 {
		return nil, nil, &errs
	}
	return ops, paths, nil
}

func appendErr(errs *model.FieldErrors, path string, err error) {
	if fe, ok := err.(*model.FieldErrors); ok {
		errs.Append(path, fe)
		return
	}
	errs.AddMalformed(path, err.Error())
}

func (s *server) transaction(w http.ResponseWriter, r *http.Request) {
	dryRun, err := dryRunQuery(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	body, err := s.readBody(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ops, paths, err := decodeTransaction(body)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := authorizeOps(r, ops, paths); err != nil {
		s.writeError(w, r, err)
		return
	}
	objs, rev, err := s.store.Commit(r.Context(), ops, relationCheck(ops, paths), dryRun)
	if err != nil {
		s.writeError(w, r, opError(err, ops, paths))
		return
	}
	resp := transactionResponse{Revision: rev, DryRun: dryRun, Results: make([]transactionResult, len(ops))}
	for i, op := range ops {
		resp.Results[i] = transactionResult{Op: string(op.Type), Object: objs[i]}
	}
	writeJSON(w, http.StatusOK, resp)
}

// opError points a store error about one object (not found, already exists, conflict) at the
// operation that names it: the store's errors name the key ("update Network/acme/web: ...").
func opError(err error, ops []store.Op, paths []string) error {
	ae := toAPIError(err)
	if ae.status >= 500 || len(ae.details) > 0 {
		return ae
	}
	msg := err.Error()
	for i, op := range ops {
		if strings.Contains(msg, " "+op.Object.Key().String()+":") {
			field := ae.field
			if field == "" {
				field = "metadata.name"
			}
			ae.field = model.JoinPath(paths[i], field)
			break
		}
	}
	return ae
}
