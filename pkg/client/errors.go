package client

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Error is a problem (RFC 9457) the service answered with, or a non-2xx
// answer without one.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Code is the service's stable code (NO_MORE_UNITS, ALLOCATION_NOT_FOUND,
	// VALIDATION_FAILED, …); for answers without a problem body it is empty.
	Code   string
	Title  string
	Detail string
	// Fields are the invalid input fields of a VALIDATION_FAILED problem.
	Fields []FieldError
	// RequestID is the X-Request-Id of the answer: quote it to operators.
	RequestID string
	// RetryAfter is the answer's Retry-After (0 when absent).
	RetryAfter time.Duration
	// Decision is the engine's decision carried by a refused registration.
	Decision *Decision
}

// FieldError names one invalid input field.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "licensing-controller: %d", e.Status)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	} else if e.Title != "" {
		b.WriteString(": " + e.Title)
	}
	if e.RequestID != "" {
		b.WriteString(" (request " + e.RequestID + ")")
	}
	return b.String()
}

// Is matches another *Error by Code when it has one, else by Status:
// errors.Is(err, client.ErrNoMoreUnits), errors.Is(err, client.ErrNotFound).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	if t.Code != "" {
		return e.Code == t.Code
	}
	return t.Status != 0 && e.Status == t.Status
}

// Errors to test with errors.Is.
var (
	// ErrNoMoreUnits: the pool's limit is reached (409).
	ErrNoMoreUnits = &Error{Code: "NO_MORE_UNITS"}
	// ErrDeniedByFilter: the allocation's filters or rule's constraints do not admit the agent (403).
	ErrDeniedByFilter = &Error{Code: "DENIED_BY_FILTER"}
	// ErrPackageNotLicensed: the pool has no units of a package that covers the agent (403).
	ErrPackageNotLicensed = &Error{Code: "PACKAGE_NOT_LICENSED"}
	// ErrFallbackDelay: the host's vCPU is unknown and the allocation waits (409, Retry-After).
	ErrFallbackDelay = &Error{Code: "FALLBACK_DELAY"}
	// ErrVersionConflict: a rule was changed since it was read (409).
	ErrVersionConflict = &Error{Code: "VERSION_CONFLICT"}
	// ErrOverAllocation: the limits would exceed the licensed units (409).
	ErrOverAllocation = &Error{Code: "OVER_ALLOCATION"}
	// ErrPreempted: the lease was taken by a machine agent (409 on heartbeat).
	ErrPreempted = &Error{Code: "PREEMPTED"}
	// ErrValidation: the request is invalid; see Fields (400).
	ErrValidation = &Error{Code: "VALIDATION_FAILED"}
	// ErrNotFound: any 404.
	ErrNotFound = &Error{Status: 404}
	// ErrUnauthorized: any 401.
	ErrUnauthorized = &Error{Status: 401}
	// ErrForbidden: any 403.
	ErrForbidden = &Error{Status: 403}
	// ErrConflict: any 409.
	ErrConflict = &Error{Status: 409}
	// ErrUnavailable: any 503 (the database is down or read-only).
	ErrUnavailable = &Error{Status: 503}
)

// IsNoMoreUnits reports whether err is a NO_MORE_UNITS refusal.
func IsNoMoreUnits(err error) bool { return errors.Is(err, ErrNoMoreUnits) }

// IsRefused reports whether err is a registration refused by the engine
// (any code: its Decision explains it).
func IsRefused(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Decision != nil
}

// IsNotFound reports whether err is a 404.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// IsConflict reports whether err is a 409 (a name taken, a version
// conflict, a full pool).
func IsConflict(err error) bool { return errors.Is(err, ErrConflict) }

// IsValidation reports whether err is a VALIDATION_FAILED problem.
func IsValidation(err error) bool { return errors.Is(err, ErrValidation) }

// Code is err's problem code, or "" when err is not an *Error.
func Code(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
