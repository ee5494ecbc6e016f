package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/lcorp/licensing-controller/internal/fault"
)

// TokenResponse is the RFC 6749 access token response.
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type" example:"Bearer"`
	ExpiresIn   int64  `json:"expires_in" example:"300"`
}

// OAuthError is the RFC 6749 error response.
type OAuthError struct {
	Error            string `json:"error" example:"invalid_client"`
	ErrorDescription string `json:"error_description,omitempty"`
}

// accessToken godoc
//
//	@Summary		OAuth client-credentials token
//	@Description	Form-encoded, as AppDynamics clients send it: client_id is "<clientName>@<accountName>". The body is read as a form whatever the Content-Type says (AppDynamics' own example sends application/vnd.appd.cntrl+protobuf;v=1, some clients none); a JSON object body is accepted too, and the client credentials may come as HTTP Basic (RFC 6749 §2.3.1).
//	@Tags			accounts
//	@Accept			x-www-form-urlencoded
//	@Accept			json
//	@Produce		json
//	@Param			grant_type		formData	string	true	"client_credentials"
//	@Param			client_id		formData	string	true	"clientName@accountName"
//	@Param			client_secret	formData	string	true	"the secret shown at creation"
//	@Success		200				{object}	TokenResponse
//	@Failure		400				{object}	OAuthError	"invalid_request, unsupported_grant_type"
//	@Failure		401				{object}	OAuthError	"invalid_client"
//	@Failure		413				{object}	Problem
//	@Failure		429				{object}	OAuthError	"too many failures; see Retry-After"
//	@Failure		503				{object}	Problem
//	@Router			/controller/api/oauth/access_token [post]
func (a *API) accessToken(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	body, ok := a.readBody(c)
	if !ok {
		return
	}
	form, err := tokenForm(body)
	if err != nil {
		c.JSON(http.StatusBadRequest, OAuthError{"invalid_request", err.Error()})
		return
	}
	grant, id, secret := form.Get("grant_type"), form.Get("client_id"), form.Get("client_secret")
	if id == "" || secret == "" {
		// Clients may also send the credentials as HTTP basic auth (RFC 6749 §2.3.1).
		if u, p, ok := c.Request.BasicAuth(); ok {
			id, secret = u, p
		}
	}
	for _, f := range [...]struct{ name, value string }{{"grant_type", grant}, {"client_id", id}, {"client_secret", secret}} {
		if msg := badText(f.value); msg != "" {
			bad := errors.New(f.name + " " + msg)
			err := a.auth.RejectMalformed(c.Request.Context(), c.ClientIP(), bad)
			switch {
			case errors.Is(err, fault.ErrThrottled):
				c.Header("Retry-After", "1")
				if fe, ok := fault.As(err); ok {
					c.Header("Retry-After", strconv.Itoa(fe.RetryAfterSeconds))
				}
				c.JSON(http.StatusTooManyRequests, OAuthError{"invalid_client", "too many failed attempts; retry later"})
			case errors.Is(err, bad):
				c.JSON(http.StatusBadRequest, OAuthError{"invalid_request", bad.Error()})
			default: // the database: a 503 problem, nothing of its error
				a.fail(c, err)
			}
			return
		}
	}
	switch {
	case grant == "":
		c.JSON(http.StatusBadRequest, OAuthError{"invalid_request", "grant_type is required"})
		return
	case grant != "client_credentials":
		c.JSON(http.StatusBadRequest, OAuthError{"unsupported_grant_type", "only client_credentials is supported"})
		return
	case id == "" || secret == "":
		c.JSON(http.StatusBadRequest, OAuthError{"invalid_request", "client_id and client_secret are required"})
		return
	}
	tok, err := a.auth.IssueToken(c.Request.Context(), id, secret, c.ClientIP())
	switch {
	case errors.Is(err, fault.ErrUnauthenticated):
		c.Header("WWW-Authenticate", `Basic realm="controller"`)
		c.JSON(http.StatusUnauthorized, OAuthError{Error: "invalid_client"})
	case errors.Is(err, fault.ErrThrottled):
		if fe, ok := fault.As(err); ok {
			c.Header("Retry-After", strconv.Itoa(fe.RetryAfterSeconds))
		}
		c.JSON(http.StatusTooManyRequests, OAuthError{"invalid_client", "too many failed attempts; retry later"})
	case err != nil:
		a.fail(c, err)
	default:
		c.JSON(http.StatusOK, TokenResponse{AccessToken: tok.AccessToken, TokenType: "Bearer", ExpiresIn: int64(tok.ExpiresIn.Seconds())})
	}
}

// tokenForm reads a token request's parameters. The body is a form whatever
// the Content-Type says (AppDynamics' own example sends
// application/vnd.appd.cntrl+protobuf;v=1, some clients send none); a JSON
// object body is accepted too.
func tokenForm(body []byte) (url.Values, error) {
	var err error
	form := url.Values{}
	if trimmed := bytes.TrimSpace(body); len(trimmed) > 0 && trimmed[0] == '{' {
		if _, err := checkJSON(trimmed, nil); err != nil {
			return nil, err
		}
		var m map[string]any
		if err := json.Unmarshal(trimmed, &m); err != nil {
			return nil, errors.New("the body is not a JSON object of strings (grant_type, client_id, client_secret)")
		}
		for k, v := range m {
			switch v := v.(type) {
			case string:
				form.Set(k, v)
			case float64, bool:
				form.Set(k, fmt.Sprint(v))
			default:
				return nil, fmt.Errorf("%s must be a string", k)
			}
		}
	} else if len(trimmed) > 0 {
		if form, err = url.ParseQuery(string(trimmed)); err != nil {
			return nil, errors.New("the body is not form-encoded (grant_type=client_credentials&client_id=...&client_secret=...)")
		}
	}
	// Nothing is taken from the query string: credentials in a URL end up
	// in proxy and access logs (RFC 6749 §2.3.1).
	return form, nil
}
