package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/gin-gonic/gin/binding"
	"github.com/go-playground/validator/v10"

	"github.com/lcorp/licensing-controller/internal/fault"
)

// Problem is an RFC 9457 problem details body (API.md §0).
type Problem struct {
	Type      string             `json:"type" example:"about:blank"`
	Title     string             `json:"title" example:"Bad Request"`
	Status    int                `json:"status" example:"400"`
	Code      string             `json:"code" example:"VALIDATION_FAILED"`
	Detail    string             `json:"detail,omitempty" example:"name must be 1-64 letters"`
	Errors    []fault.FieldError `json:"errors,omitempty"`
	RequestID string             `json:"requestId,omitempty"`
	// ErrorMessage repeats Detail: AppDynamics scripts print this member.
	ErrorMessage string `json:"errorMessage,omitempty" example:"name must be 1-64 letters"`
}

// statusOf is the single mapping from error kinds to HTTP status codes.
func statusOf(err error) int {
	switch {
	case errors.Is(err, fault.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, fault.ErrUnauthenticated):
		return http.StatusUnauthorized
	case errors.Is(err, fault.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, fault.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, fault.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, fault.ErrUnprocessable):
		return http.StatusUnprocessableEntity
	case errors.Is(err, fault.ErrThrottled):
		return http.StatusTooManyRequests
	case errors.Is(err, fault.ErrUnavailable), errors.Is(err, fault.ErrTransient),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// StatusClientClosedRequest is the status recorded for a request whose
// client disconnected before the answer (nginx's 499).
const StatusClientClosedRequest = 499

var defaultCodes = map[int]string{
	http.StatusBadRequest:            "VALIDATION_FAILED",
	http.StatusUnauthorized:          "UNAUTHENTICATED",
	http.StatusForbidden:             "PERMISSION_DENIED",
	http.StatusNotFound:              "NOT_FOUND",
	http.StatusMethodNotAllowed:      "METHOD_NOT_ALLOWED",
	http.StatusConflict:              "CONFLICT",
	http.StatusRequestEntityTooLarge: "BODY_TOO_LARGE",
	http.StatusUnsupportedMediaType:  "UNSUPPORTED_MEDIA_TYPE",
	http.StatusUnprocessableEntity:   "UNPROCESSABLE",
	http.StatusTooManyRequests:       "TOO_MANY_REQUESTS",
	http.StatusInternalServerError:   "INTERNAL",
	http.StatusServiceUnavailable:    "UNAVAILABLE",
}

// fail writes err as a problem and aborts the chain. It is the only place
// that logs request errors: 5xx at error level, with the cause; clients see
// only the request id.
func (a *API) fail(c *gin.Context, err error) {
	if errors.Is(c.Request.Context().Err(), context.Canceled) {
		// The client went away (a request's own deadline is
		// DeadlineExceeded): nobody reads an answer, and it is no failure
		// of the service. 499, nginx's "client closed request", in the
		// access log and the metrics; the cause at debug level.
		a.log.DebugContext(c.Request.Context(), "client closed the request", "request_id", requestID(c), "error", err)
		c.AbortWithStatus(StatusClientClosedRequest)
		return
	}
	status := statusOf(err)
	p := Problem{Type: "about:blank", Title: http.StatusText(status), Status: status,
		Code: defaultCodes[status], RequestID: requestID(c)}
	var extra map[string]any
	if fe, ok := fault.As(err); ok && status < 500 {
		p.Code, p.Detail, p.Errors, extra = fe.Code, fe.Detail, fe.Fields, fe.Extra
		if fe.RetryAfterSeconds > 0 {
			c.Header("Retry-After", strconv.Itoa(fe.RetryAfterSeconds))
		}
	}
	switch {
	case errors.Is(err, fault.ErrTransient):
		p.Code, p.Detail = "TRY_AGAIN", "a concurrent request got in the way; retry"
		c.Header("Retry-After", "1")
		a.log.WarnContext(c.Request.Context(), "request failed", "request_id", p.RequestID, "status", status, "error", err)
	case status == http.StatusServiceUnavailable:
		p.Detail = "the database is unavailable; retry later"
		if fe, ok := fault.As(err); ok {
			p.Code, p.Detail = fe.Code, fe.Detail
		} else if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			p.Code, p.Detail = fault.Timeout.Code, fault.Timeout.Detail
		}
		c.Header("Retry-After", "5")
		a.log.WarnContext(c.Request.Context(), "request failed", "request_id", p.RequestID, "status", status, "error", err)
	case status >= 500:
		p.Detail = "internal error; quote the request id when reporting it"
		a.log.ErrorContext(c.Request.Context(), "request failed", "request_id", p.RequestID, "status", status, "error", err)
	}
	if status == http.StatusUnauthorized {
		setChallenge(c)
	}
	a.writeProblem(c, p, extra)
}

func setChallenge(c *gin.Context) {
	if scheme, _, _ := strings.Cut(c.GetHeader("Authorization"), " "); strings.EqualFold(scheme, "Bearer") {
		c.Header("WWW-Authenticate", `Bearer realm="controller", error="invalid_token"`)
		return
	}
	c.Header("WWW-Authenticate", `Basic realm="controller", charset="UTF-8"`)
}

// problem writes a problem built from a status and code, for failures the
// HTTP layer detects itself.
func (a *API) problem(c *gin.Context, status int, code, detail string) {
	a.writeProblem(c, Problem{Type: "about:blank", Title: http.StatusText(status), Status: status,
		Code: code, Detail: detail, RequestID: requestID(c)}, nil)
}

func (a *API) writeProblem(c *gin.Context, p Problem, extra map[string]any) {
	p.ErrorMessage = p.Detail
	var body any = p
	if len(extra) > 0 {
		m := map[string]any{}
		b, _ := json.Marshal(p)
		_ = json.Unmarshal(b, &m)
		for k, v := range extra {
			if _, taken := m[k]; !taken {
				m[k] = v
			}
		}
		body = m
	}
	b, err := json.Marshal(body)
	if err != nil {
		b = []byte(`{"type":"about:blank","title":"Internal Server Error","status":500,"code":"INTERNAL"}`)
	}
	c.Data(p.Status, "application/problem+json", b)
	c.Abort()
}

// bindJSON decodes the body into dst (unknown fields rejected) and runs the
// validator. It writes the problem itself and returns false on failure.
func (a *API) bindJSON(c *gin.Context, dst any) bool {
	return a.bindJSONBody(c, dst, false)
}

// bindJSONBody is bindJSON; optional accepts an empty body (dst keeps its
// zero value and is not validated).
func (a *API) bindJSONBody(c *gin.Context, dst any, optional bool) bool {
	if !optional && !a.jsonContentType(c) {
		return false
	}
	body, ok := a.readBody(c)
	if !ok {
		return false
	}
	if optional {
		if len(bytes.TrimSpace(body)) == 0 {
			return true
		}
		if !a.jsonContentType(c) {
			return false
		}
	}
	scan, err := checkJSON(body, shapeOf(reflect.TypeOf(dst)))
	if err != nil {
		a.fail(c, err)
		return false
	}
	if err := binding.JSON.BindBody(body, dst); err != nil {
		a.failBind(c, scan, err)
		return false
	}
	return true
}

// readBody reads the whole body; a body over the limit is a 413, one that
// arrives too slowly a 408, and no error shows socket details.
func (a *API) readBody(c *gin.Context) ([]byte, bool) {
	body, err := io.ReadAll(c.Request.Body)
	if err == nil {
		return body, true
	}
	var (
		maxErr *http.MaxBytesError
		netErr net.Error
	)
	switch {
	case errors.As(err, &maxErr):
		a.problem(c, http.StatusRequestEntityTooLarge, "BODY_TOO_LARGE", fmt.Sprintf("request body exceeds %d bytes", maxErr.Limit))
	case errors.As(err, &netErr) && netErr.Timeout(), errors.Is(err, os.ErrDeadlineExceeded):
		a.problem(c, http.StatusRequestTimeout, "REQUEST_TIMEOUT", "the request body did not arrive in time")
	default:
		a.problem(c, http.StatusBadRequest, "VALIDATION_FAILED", "the request body could not be read completely")
	}
	return nil, false
}

// isJSONType reports a JSON media type (application/json or …+json, in
// any case).
func isJSONType(ct string) bool {
	ct = strings.ToLower(ct)
	return ct == "application/json" || strings.HasSuffix(ct, "+json")
}

// jsonContentType refuses a body that is not JSON in UTF-8 (415), and a
// Content-Type that does not parse.
func (a *API) jsonContentType(c *gin.Context) bool {
	ct := c.ContentType()
	if !isJSONType(ct) {
		a.problem(c, http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE",
			fmt.Sprintf("Content-Type must be application/json, not %.100q", ct))
		return false
	}
	_, params, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if err != nil {
		a.problem(c, http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE",
			"Content-Type is malformed: send application/json; charset=utf-8")
		return false
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		a.problem(c, http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE",
			fmt.Sprintf("JSON must be UTF-8, not charset %.40q", cs))
		return false
	}
	return true
}

func (a *API) failBind(c *gin.Context, scan jsonScan, err error) {
	var (
		maxErr  *http.MaxBytesError
		typeErr *json.UnmarshalTypeError
		synErr  *json.SyntaxError
		valErrs validator.ValidationErrors
	)
	switch {
	case errors.As(err, &maxErr):
		a.problem(c, http.StatusRequestEntityTooLarge, "BODY_TOO_LARGE",
			fmt.Sprintf("request body exceeds %d bytes", maxErr.Limit))
	case errors.Is(err, io.EOF):
		a.fail(c, fault.Invalid("body", "must not be empty"))
	case errors.As(err, &typeErr):
		a.fail(c, fault.Invalid(typeErrorField(scan, typeErr), "must be "+article(typeErr.Type.Kind().String())))
	case errors.As(err, &synErr), errors.Is(err, io.ErrUnexpectedEOF):
		a.fail(c, fault.Invalid("body", "is not valid JSON: "+err.Error()))
	case errors.As(err, &valErrs):
		fields := make([]fault.FieldError, 0, len(valErrs))
		for _, fe := range valErrs {
			fields = append(fields, fault.FieldError{Field: fieldPath(fe.Namespace()), Message: validationMessage(fe)})
		}
		a.fail(c, fault.Invalids(fields))
	default:
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			a.fail(c, fault.Invalid(strings.Trim(name, `"`), "is not a known field"))
			return
		}
		a.fail(c, fault.Invalid("body", err.Error()))
	}
}

func article(kind string) string {
	switch kind {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	}
	return "a " + kind
}

// fieldPath drops the top-level struct name: "createUser.limits[0].units"
// becomes "limits[0].units".
func fieldPath(ns string) string {
	if _, rest, ok := strings.Cut(ns, "."); ok {
		return rest
	}
	return ns
}

func validationMessage(fe validator.FieldError) string {
	switch fe.Tag() {
	case "required":
		return "is required"
	case "min":
		return "must be at least " + fe.Param()
	case "max":
		return "must be at most " + fe.Param()
	case "gte":
		return "must be >= " + fe.Param()
	case "lte":
		return "must be <= " + fe.Param()
	case "oneof":
		return "must be one of " + strings.ReplaceAll(fe.Param(), " ", ", ")
	case "uuid", "uuid4":
		return "must be a UUID"
	case "unique":
		return "must not contain duplicates"
	}
	return "fails the " + fe.Tag() + " rule"
}
