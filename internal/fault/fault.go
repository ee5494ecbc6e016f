// Package fault defines the error kinds shared by the domain packages and the
// typed error that carries a stable machine-readable code. The HTTP layer maps
// kinds to status codes in exactly one place.
package fault

import (
	"errors"
	"fmt"
	"strings"
)

// Kinds of error. Domain and store errors wrap exactly one of them.
var (
	ErrInvalid         = errors.New("invalid")
	ErrNotFound        = errors.New("not found")
	ErrConflict        = errors.New("conflict")
	ErrForbidden       = errors.New("forbidden")
	ErrUnauthenticated = errors.New("unauthenticated")
	ErrThrottled       = errors.New("throttled")
	ErrUnprocessable   = errors.New("unprocessable")
	ErrUnavailable     = errors.New("unavailable")
	// ErrTransient is a transaction that lost to a concurrent one (a
	// deadlock, a serialisation failure): running it again may succeed.
	ErrTransient = errors.New("transient")
	// ErrConnLost accompanies ErrUnavailable when the database closed or
	// reset the connection under a statement (a restart, a failover): an
	// idempotent operation may run once more on a fresh connection.
	ErrConnLost = errors.New("database connection lost")
)

// Unavailable errors with their codes (503).
var (
	// ReadOnly: the database refuses writes (a standby, or
	// default_transaction_read_only).
	ReadOnly = New(ErrUnavailable, "READ_ONLY", "the database is read-only (a standby?); retry later")
	// Timeout: the request's deadline passed, or a statement_timeout.
	Timeout = New(ErrUnavailable, "TIMEOUT", "the request took longer than its deadline; retry later")
)

// FieldError names one offending input field.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is a domain error with a stable code. It unwraps to its Kind.
type Error struct {
	Kind   error
	Code   string
	Detail string
	Fields []FieldError
	// RetryAfterSeconds, when positive, is sent as a Retry-After header.
	RetryAfterSeconds int
	// Extra members added to the problem body (figures of a refusal, ...).
	Extra map[string]any
}

func (e *Error) Error() string {
	if e.Detail != "" {
		return strings.ToLower(e.Code) + ": " + e.Detail
	}
	return strings.ToLower(e.Code)
}

// Unwrap returns the kind so that errors.Is(err, fault.ErrNotFound) works.
func (e *Error) Unwrap() error { return e.Kind }

// New returns an *Error of the given kind and code.
func New(kind error, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Detail: fmt.Sprintf(format, args...)}
}

// Invalid returns a VALIDATION_FAILED error naming one field.
func Invalid(field, message string) *Error {
	return &Error{
		Kind:   ErrInvalid,
		Code:   "VALIDATION_FAILED",
		Detail: field + " " + message,
		Fields: []FieldError{{Field: field, Message: message}},
	}
}

// Invalids returns a VALIDATION_FAILED error naming several fields; it returns
// nil when fields is empty so callers can collect and return unconditionally.
func Invalids(fields []FieldError) error {
	if len(fields) == 0 {
		return nil
	}
	parts := make([]string, 0, len(fields))
	for _, f := range fields {
		parts = append(parts, f.Field+" "+f.Message)
	}
	return &Error{Kind: ErrInvalid, Code: "VALIDATION_FAILED", Detail: strings.Join(parts, "; "), Fields: fields}
}

// As returns the *Error in err's chain, if any.
func As(err error) (*Error, bool) {
	var fe *Error
	ok := errors.As(err, &fe)
	return fe, ok
}
