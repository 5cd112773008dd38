package api

import (
	"net/http"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/store"
)

// noFleet answers the routes that need a Fleet when the API has none.
func (s *server) noFleet(w http.ResponseWriter, r *http.Request) bool {
	if s.fleet != nil {
		return false
	}
	s.writeError(w, r, errorf(http.StatusNotImplemented, reasonNotImplemented, "", "this control plane serves no fleet"))
	return true
}

func (s *server) listDSNs(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r, "limit", "continue", "labelSelector")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	p, err := q.list()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if p.cont != "" {
		if msg := model.CheckDSNID(p.cont); msg != "" {
			s.writeError(w, r, errorf(http.StatusBadRequest, reasonBadRequest, "continue", "not a token this API issued: %s", msg))
			return
		}
	}
	if s.noFleet(w, r) {
		return
	}
	items, next, err := s.fleet.DSNs(r.Context(), p.selector, p.limit, p.cont)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newList(model.KindDSN, items, 0, next))
}

func (s *server) getDSN(w http.ResponseWriter, r *http.Request) {
	if _, err := parseQuery(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	id, err := pathName(r, "id", true)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.noFleet(w, r) {
		return
	}
	obj, err := s.fleet.DSN(r.Context(), id)
	if err != nil {
		s.writeError(w, r, dsnNotFound(err, id))
		return
	}
	writeJSON(w, http.StatusOK, obj)
}

// deleteDSN decommissions a DSN: the control plane forgets it and refuses it until it is admitted
// again. The answer is the DSN as it was.
func (s *server) deleteDSN(w http.ResponseWriter, r *http.Request) {
	id, dryRun, err := dsnWrite(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.noFleet(w, r) {
		return
	}
	obj, err := s.fleet.DSN(r.Context(), id)
	if err != nil {
		s.writeError(w, r, dsnNotFound(err, id))
		return
	}
	if !dryRun {
		if err := s.fleet.Decommission(r.Context(), id); err != nil {
			s.writeError(w, r, dsnNotFound(err, id))
			return
		}
	}
	writeJSON(w, http.StatusOK, obj)
}

// putDSN replaces a DSN's labels: the one part of a DSN the API changes. Its tenant is fixed at
// admission; its spec and status are what it reports.
func (s *server) putDSN(w http.ResponseWriter, r *http.Request) {
	id, dryRun, err := dsnWrite(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	body, err := s.readBody(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req DSNLabels
	if err := model.DecodeStrict(body, &req, ""); err != nil {
		s.writeError(w, r, err)
		return
	}
	errs := &model.FieldErrors{}
	if req.Labels == nil {
		errs.Add("labels", "required (an empty object removes every label)")
	}
	model.ValidateLabels(req.Labels, "labels", errs)
	if errs.Len() > 0 {
		s.writeError(w, r, errs)
		return
	}
	if s.noFleet(w, r) {
		return
	}
	rl, ok := s.fleet.(Relabeler)
	if !ok {
		s.writeError(w, r, errorf(http.StatusNotImplemented, reasonNotImplemented, "", "this control plane's fleet does not change DSN labels"))
		return
	}
	obj, err := s.fleet.DSN(r.Context(), id)
	if err == nil && !dryRun {
		obj, err = rl.SetLabels(r.Context(), id, req.Labels)
	}
	if err != nil {
		s.writeError(w, r, dsnNotFound(err, id))
		return
	}
	if dryRun {
		obj.Metadata.Labels = req.Labels
	}
	writeJSON(w, http.StatusOK, obj)
}

// dsnWrite reads what a write to one DSN names: the DSN, and whether it is a dry run.
func dsnWrite(r *http.Request) (id string, dryRun bool, err error) {
	if dryRun, err = dryRunQuery(r); err != nil {
		return "", false, err
	}
	id, err = pathName(r, "id", true)
	return id, dryRun, err
}

func dsnNotFound(err error, id string) error {
	ae := toAPIError(err)
	if ae.status == http.StatusNotFound {
		ae.message = "DSN " + id + " not found"
	}
	return ae
}

// getConvergence answers GET /api/v1/convergence: how far the fleet is towards a revision
// (default: the current one).
func (s *server) getConvergence(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r, "revision")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rev, err := q.uint("revision")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	cur, err := store.Reach(r.Context(), s.store, rev)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if q.Get("revision") == "" {
		rev = cur
	} else if rev > cur {
		s.writeError(w, r, errorf(http.StatusBadRequest, reasonBadRequest, "revision",
			"revision %d does not exist yet: the current revision is %d", rev, cur))
		return
	}
	if s.noFleet(w, r) {
		return
	}
	c, err := s.fleet.Convergence(r.Context(), rev)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if c.BehindDSNs == nil {
		c.BehindDSNs = []string{}
	}
	writeJSON(w, http.StatusOK, c)
}

// revisionBody answers GET /api/v1/revision.
type revisionBody struct {
	Revision          uint64 `json:"revision"`
	CompactedRevision uint64 `json:"compactedRevision"`
}

func (s *server) getRevision(w http.ResponseWriter, r *http.Request) {
	if _, err := parseQuery(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, revisionBody{Revision: s.store.Revision(), CompactedRevision: s.store.CompactedRevision()})
}
