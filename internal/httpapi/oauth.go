package httpapi

import (
	"errors"
	"net/http"
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
//	@Description	Form-encoded, as AppDynamics clients send it: client_id is "<clientName>@<accountName>".
//	@Tags			accounts
//	@Accept			x-www-form-urlencoded
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
	grant, id, secret := c.PostForm("grant_type"), c.PostForm("client_id"), c.PostForm("client_secret")
	if id == "" || secret == "" {
		// Clients may also send the credentials as HTTP basic auth (RFC 6749 §2.3.1).
		if u, p, ok := c.Request.BasicAuth(); ok {
			id, secret = u, p
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
