package admission

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/pki"
)

// AdmitPath is where a new DSN exchanges its bootstrap token and CSR for its identity, before
// it can open a mutual-TLS connection to the bus.
const AdmitPath = "/api/v1/admission"

// MaxAdmitBodyBytes bounds an admission request.
const MaxAdmitBodyBytes = 32 << 10

// AdmitRequest is the body of POST /api/v1/admission.
type AdmitRequest struct {
	Token  string            `json:"token"`
	DSN    string            `json:"dsn"`
	Labels map[string]string `json:"labels,omitempty"`
	CSR    string            `json:"csr"`
}

// AdmitResponse is the answer to an admission.
type AdmitResponse struct {
	// Certificate is the DSN's identity (PEM); CA is the root to trust the bus and the API with.
	Certificate string    `json:"certificate"`
	CA          string    `json:"ca"`
	NotAfter    time.Time `json:"notAfter"`
	// Role is the identity's role: "dsn", or "gateway" for a gateway token.
	Role   string            `json:"role"`
	Tenant string            `json:"tenant,omitempty"`
	Labels map[string]string `json:"labels"`
}

// AdmitHandler serves POST /api/v1/admission: a DSN without an identity presents its bootstrap
// token, its id, its labels and a CSR, and gets its certificate and the CA's root. The token is
// the credential (the route is public, like login, and should be rate limited by source): a
// token that is unknown, expired, revoked, spent or for another DSN gets 401; a bad CSR, id or
// labels 422 with the field; a busy store 503 with Retry-After.
func AdmitHandler(a *Admitter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "", "use POST")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxAdmitBodyBytes))
		if err != nil {
			writeError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "", fmt.Sprintf("request body is over the limit of %d bytes", MaxAdmitBodyBytes))
			return
		}
		var req AdmitRequest
		if err := model.DecodeStrict(body, &req, ""); err != nil {
			writeErr(w, err)
			return
		}
		for field, v := range map[string]string{"token": req.Token, "dsn": req.DSN, "csr": req.CSR} {
			if v == "" {
				writeError(w, http.StatusBadRequest, "BadRequest", field, "required")
				return
			}
		}
		g, err := a.Admit(r.Context(), Request{Token: req.Token, DSN: req.DSN, Labels: req.Labels, CSR: []byte(req.CSR)})
		if err != nil {
			writeAdmitError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, AdmitResponse{
			Certificate: string(g.Certificate), CA: string(a.ca.CertPEM()), NotAfter: g.NotAfter.UTC(), Role: g.Role, Tenant: g.Tenant, Labels: g.Labels,
		})
	})
}

func writeAdmitError(w http.ResponseWriter, err error) {
	var fe *model.FieldErrors
	switch {
	case errors.Is(err, ErrInvalidToken):
		writeError(w, http.StatusUnauthorized, "Unauthorized", "token", "the bootstrap token is not valid")
	case errors.Is(err, ErrExpired), errors.Is(err, ErrRevoked), errors.Is(err, ErrExhausted), errors.Is(err, ErrNotForDSN):
		writeError(w, http.StatusUnauthorized, "Unauthorized", "token", err.Error())
	case errors.Is(err, pki.ErrIdentity), errors.Is(err, pki.ErrInvalidCSR):
		writeError(w, http.StatusUnprocessableEntity, "Invalid", "csr", err.Error())
	case errors.Is(err, ErrLabelConflict):
		writeError(w, http.StatusUnprocessableEntity, "Invalid", "labels", err.Error())
	case errors.As(err, &fe):
		writeErr(w, err)
	case errors.Is(err, ErrInvalid):
		writeError(w, http.StatusUnprocessableEntity, "Invalid", "dsn", err.Error())
	default:
		writeErr(w, err) // the store: 503 with Retry-After
	}
}
