package api

import (
	"errors"
	"testing"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/store"
)

// FuzzTransactionBody checks that the transaction decoder never panics, rejects only with a
// *model.FieldErrors, and that what it accepts is a bounded list of valid operations on distinct
// objects.
func FuzzTransactionBody(f *testing.F) {
	for _, s := range []string{
		txBody([2]string{"create", tenant("acme")}, [2]string{"create", network("acme", "web", "10.0.0.0/24", 1, nil)}),
		txBody([2]string{"update", policy("acme", "p", [2]string{"web", "db"})}),
		txBody([2]string{"delete", `{"kind":"Network","metadata":{"name":"web","tenant":"acme","resourceVersion":"7"}}`}),
		txBody([2]string{"create", tenant("a")}, [2]string{"delete", `{"kind":"Tenant","metadata":{"name":"a"}}`}),
		`{"operations":[]}`, `{"operations":null}`, `{}`, `[]`, `null`, ``, `{"operations":[{"op":"create"}]}`,
		`{"operations":[{"op":"create","object":null}]}`, `{"operations":[{"op":1,"object":[]}]}`,
		`{"operations":[{"op":"delete","object":{"kind":"DSN","metadata":{"name":"d"}}}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ops, paths, err := decodeTransaction(body)
		if err != nil {
			var fe *model.FieldErrors
			if !errors.As(err, &fe) || fe.Len() == 0 {
				t.Fatalf("error %T %v is not a *model.FieldErrors", err, err)
			}
			if ae := toAPIError(err); ae.status != 400 && ae.status != 422 {
				t.Fatalf("rejection maps to status %d", ae.status)
			}
			return
		}
		if len(ops) == 0 || len(ops) > MaxTransactionOps || len(paths) != len(ops) {
			t.Fatalf("accepted %d ops with %d paths", len(ops), len(paths))
		}
		seen := map[model.Key]bool{}
		for i, op := range ops {
			key := op.Object.Key()
			if seen[key] {
				t.Fatalf("ops[%d]: %s twice", i, key)
			}
			seen[key] = true
			switch op.Type {
			case store.OpCreate, store.OpUpdate:
				if err := model.Validate(op.Object); err != nil {
					t.Fatalf("ops[%d]: accepted an invalid object: %v", i, err)
				}
			case store.OpDelete:
				if model.CheckName(key.Name) != "" || key.Kind == model.KindDSN {
					t.Fatalf("ops[%d]: accepted a bad delete of %s", i, key)
				}
			default:
				t.Fatalf("ops[%d]: accepted op type %q", i, op.Type)
			}
		}
	})
}
