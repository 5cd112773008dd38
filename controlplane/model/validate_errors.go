package model

import (
	"errors"
	"strconv"
	"strings"
)

// Sentinel errors for rejected objects; a *FieldErrors matches them with errors.Is.
var (
	// ErrInvalid matches every *FieldErrors: the object was rejected.
	ErrInvalid = errors.New("invalid object")
	// ErrMalformed matches a *FieldErrors that holds at least one malformed-input error: bad JSON,
	// a field of the wrong JSON type, an unknown or duplicate field, a wrong apiVersion or kind.
	// An API answers those with 400 and the rest with 422.
	ErrMalformed = errors.New("malformed object")
)

// maxFieldErrors bounds how many errors one object collects, so that a hostile input cannot make
// the error list grow with its size.
const maxFieldErrors = 64

// FieldError is one problem with one field of an object.
type FieldError struct {
	// Field is the path of the field, such as "spec.rules[2].from.network" or
	// `metadata.labels["app"]`; empty for the object as a whole.
	Field string `json:"field"`
	// Message says what is wrong and, where it helps, what would be right.
	Message string `json:"message"`
	// Malformed marks errors in the shape of the input rather than its values (see ErrMalformed).
	Malformed bool `json:"-"`
}

// Error renders the error as "field: message".
func (e FieldError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// FieldErrors is the list of problems found in one object (or one batch of objects).
type FieldErrors struct {
	Errors []FieldError `json:"errors"`
}

// Error renders every field error, separated by "; ".
func (e *FieldErrors) Error() string {
	if e == nil || len(e.Errors) == 0 {
		return ErrInvalid.Error()
	}
	parts := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		parts[i] = fe.Error()
	}
	return strings.Join(parts, "; ")
}

// Is makes errors.Is(err, ErrInvalid) true for every *FieldErrors and errors.Is(err,
// ErrMalformed) true when one of its errors is malformed input.
func (e *FieldErrors) Is(target error) bool {
	switch target {
	case ErrInvalid:
		return true
	case ErrMalformed:
		return e.Malformed()
	}
	return false
}

// Malformed reports whether any error is a malformed-input error.
func (e *FieldErrors) Malformed() bool {
	if e == nil {
		return false
	}
	for _, fe := range e.Errors {
		if fe.Malformed {
			return true
		}
	}
	return false
}

// Add records an error in the value of field.
func (e *FieldErrors) Add(field, message string) {
	if len(e.Errors) < maxFieldErrors {
		e.Errors = append(e.Errors, FieldError{Field: field, Message: message})
	}
}

// AddMalformed records a malformed-input error at field.
func (e *FieldErrors) AddMalformed(field, message string) {
	if len(e.Errors) < maxFieldErrors {
		e.Errors = append(e.Errors, FieldError{Field: field, Message: message, Malformed: true})
	}
}

// Append adds the errors of other, each with its field path under prefix ("operations[3].object").
func (e *FieldErrors) Append(prefix string, other *FieldErrors) {
	if other == nil {
		return
	}
	for _, fe := range other.Errors {
		if len(e.Errors) >= maxFieldErrors {
			return
		}
		fe.Field = JoinPath(prefix, fe.Field)
		e.Errors = append(e.Errors, fe)
	}
}

// Len returns the number of errors.
func (e *FieldErrors) Len() int {
	if e == nil {
		return 0
	}
	return len(e.Errors)
}

// Err returns e as an error, or nil when it holds no errors.
func (e *FieldErrors) Err() error {
	if e.Len() == 0 {
		return nil
	}
	return e
}

// JoinPath joins a field path prefix and a path relative to it.
func JoinPath(prefix, field string) string {
	switch {
	case prefix == "":
		return field
	case field == "":
		return prefix
	case field[0] == '[':
		return prefix + field
	}
	return prefix + "." + field
}

// indexPath renders path[i].
func indexPath(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// keyPath renders path["key"], quoting the key so that keys holding dots or slashes stay readable.
func keyPath(path, key string) string { return path + "[" + strconv.Quote(key) + "]" }
