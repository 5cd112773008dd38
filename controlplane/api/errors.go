package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/store"
)

// Reasons in error bodies: a machine-readable word for each kind of failure.
const (
	reasonBadRequest         = "BadRequest"
	reasonNotFound           = "NotFound"
	reasonMethodNotAllowed   = "MethodNotAllowed"
	reasonConflict           = "Conflict"
	reasonAlreadyExists      = "AlreadyExists"
	reasonGone               = "Gone"
	reasonTooLarge           = "RequestEntityTooLarge"
	reasonUnsupportedMedia   = "UnsupportedMediaType"
	reasonInvalid            = "Invalid"
	reasonTooManyRequests    = "TooManyRequests"
	reasonInternal           = "InternalError"
	reasonNotImplemented     = "NotImplemented"
	reasonServiceUnavailable = "ServiceUnavailable"
)

// retryAfterSeconds is the hint given with 429 and 503.
const retryAfterSeconds = "1"

// apiError is an error with everything its HTTP answer needs.
type apiError struct {
	status  int
	reason  string
	message string
	field   string
	details []model.FieldError
	cause   error // logged, never shown
}

func (e *apiError) Error() string {
	if e.field != "" {
		return fmt.Sprintf("%d %s: %s: %s", e.status, e.reason, e.field, e.message)
	}
	return fmt.Sprintf("%d %s: %s", e.status, e.reason, e.message)
}

func (e *apiError) Unwrap() error { return e.cause }

func errorf(status int, reason, field, format string, args ...any) *apiError {
	return &apiError{status: status, reason: reason, field: field, message: fmt.Sprintf(format, args...)}
}

func unavailable(cause error, format string, args ...any) *apiError {
	e := errorf(http.StatusServiceUnavailable, reasonServiceUnavailable, "", format, args...)
	e.cause = cause
	return e
}

// fieldErrors turns validation errors into a 400 (malformed input) or 422 (bad values) answer
// whose field and message are the first error's and whose details list them all.
func fieldErrors(fe *model.FieldErrors) *apiError {
	status, reason := http.StatusUnprocessableEntity, reasonInvalid
	if fe.Malformed() {
		status, reason = http.StatusBadRequest, reasonBadRequest
	}
	e := &apiError{status: status, reason: reason, message: fe.Error(), details: fe.Errors, cause: fe}
	if len(fe.Errors) > 0 {
		e.field = fe.Errors[0].Field
	}
	return e
}

// errorBody is the JSON of every error answer.
type errorBody struct {
	Code    int                `json:"code"`
	Reason  string             `json:"reason"`
	Message string             `json:"message"`
	Field   string             `json:"field,omitempty"`
	Details []model.FieldError `json:"details,omitempty"`
}

// toAPIError maps any error to its HTTP answer. Store and fleet failures that are not one of
// their sentinel errors mean the backend is not answering: 503, so that clients retry.
func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var fe *model.FieldErrors
	if errors.As(err, &fe) {
		return fieldErrors(fe)
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return errorf(http.StatusRequestEntityTooLarge, reasonTooLarge, "", "request body is over the limit of %d bytes", mbe.Limit)
	case errors.Is(err, store.ErrNotFound):
		return &apiError{status: http.StatusNotFound, reason: reasonNotFound, message: err.Error(), cause: err}
	case errors.Is(err, ErrUnknownDSN):
		return &apiError{status: http.StatusNotFound, reason: reasonNotFound, message: err.Error(), cause: err}
	case errors.Is(err, store.ErrAlreadyExists):
		return &apiError{status: http.StatusConflict, reason: reasonAlreadyExists, message: err.Error(), field: "metadata.name", cause: err}
	case errors.Is(err, store.ErrConflict):
		return &apiError{status: http.StatusConflict, reason: reasonConflict, field: "metadata.resourceVersion",
			message: err.Error() + ": the object changed since it was read; get it again and retry", cause: err}
	case errors.Is(err, store.ErrInvalid):
		return &apiError{status: http.StatusUnprocessableEntity, reason: reasonInvalid, message: err.Error(), cause: err}
	case errors.Is(err, store.ErrCompacted):
		return &apiError{status: http.StatusGone, reason: reasonGone, message: err.Error() + ": start again from a fresh list or a later revision", cause: err}
	case errors.Is(err, context.Canceled):
		// The client went away; the answer is only for the log.
		return &apiError{status: 499, reason: "ClientClosedRequest", message: "client closed the request", cause: err}
	case errors.Is(err, store.ErrClosed), errors.Is(err, context.DeadlineExceeded):
		return unavailable(err, "store unavailable: %v", err)
	}
	return unavailable(err, "backend unavailable: %v", err)
}

// writeError answers with err as a JSON error body.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	ae := toAPIError(err)
	if ae.status >= 500 {
		s.log.Warn("api request failed", "method", r.Method, "path", r.URL.Path, "status", ae.status, "err", err)
	}
	if ae.status == http.StatusServiceUnavailable || ae.status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", retryAfterSeconds)
	}
	writeJSON(w, ae.status, errorBody{Code: ae.status, Reason: ae.reason, Message: ae.message, Field: ae.field, Details: ae.details})
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(errorBody{Code: status, Reason: reasonInternal, Message: "encoding the answer: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
