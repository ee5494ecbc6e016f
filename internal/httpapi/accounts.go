package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lcorp/licensing-controller/internal/auth"
	"github.com/lcorp/licensing-controller/internal/fault"
)

// jsonFieldName makes validator errors name fields as clients send them.
func jsonFieldName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "-" {
		return ""
	}
	if name == "" {
		return f.Name
	}
	return name
}

func unavailable(err error) error {
	if errors.Is(err, fault.ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", fault.ErrUnavailable, err)
}

// AccountResponse is the caller's account.
type AccountResponse struct {
	ID                int64  `json:"id" example:"1"`
	Name              string `json:"name" example:"customer1"`
	GlobalAccountName string `json:"globalAccountName" example:"customer1_5f0c1e9a-3b7e-4c1f-9a53-1f0b8f3c2d11"`
	// Links are absolute URLs of the account's applications, licence
	// modules and users (AppDynamics clients follow them).
	Links []Link `json:"links"`
}

// Link is a named absolute URL, as AppDynamics' account API shows them.
type Link struct {
	Name string `json:"name" example:"applications"`
	Href string `json:"href" example:"http://controller.example:8080/controller/api/accounts/1/applications"`
}

// accountByID godoc
//
//	@Summary	The caller's account by its id (another account's id is a 404)
//	@Tags		accounts
//	@Produce	json
//	@Security	BasicAuth
//	@Security	BearerAuth
//	@Param		accountId	path		int	true	"account id"
//	@Success	200			{object}	AccountResponse
//	@Failure	400			{object}	Problem
//	@Failure	401			{object}	Problem
//	@Failure	404			{object}	Problem	"ACCOUNT_NOT_FOUND"
//	@Failure	503			{object}	Problem
//	@Router		/controller/api/accounts/{accountId} [get]
func (a *API) accountByID(c *gin.Context) { a.myAccount(c) }

// myAccount godoc
//
//	@Summary	The caller's account
//	@Tags		accounts
//	@Produce	json
//	@Security	BasicAuth
//	@Security	BearerAuth
//	@Success	200	{object}	AccountResponse
//	@Failure	401	{object}	Problem
//	@Failure	429	{object}	Problem
//	@Failure	503	{object}	Problem
//	@Router		/controller/api/accounts/myaccount [get]
func (a *API) myAccount(c *gin.Context) {
	p := principal(c)
	acc, err := a.auth.Account(c.Request.Context(), p.AccountID)
	if err != nil {
		a.fail(c, err)
		return
	}
	base := a.baseURL(c) + "/controller/api/accounts/" + strconv.FormatInt(acc.ID, 10)
	c.JSON(http.StatusOK, AccountResponse{ID: acc.ID, Name: acc.Name, GlobalAccountName: acc.GlobalAccountName(),
		Links: []Link{{"applications", base + "/applications"}, {"licensemodules", base + "/licensemodules"}, {"users", base + "/users"}}})
}

// PrincipalResponse is who the caller is, and what it may do.
type PrincipalResponse struct {
	Kind        string            `json:"kind" enums:"user,api-client" example:"user"`
	Name        string            `json:"name" example:"admin"`
	AccountID   int64             `json:"accountId" example:"1"`
	AccountName string            `json:"accountName" example:"customer1"`
	Role        auth.Role         `json:"role" example:"account-owner"`
	Permissions []auth.Permission `json:"permissions"`
}

// myPrincipal godoc
//
//	@Summary		Who the caller is: kind, name, account, role and permissions
//	@Description	The dashboard shows only what the caller may do; scripts may use it to check credentials.
//	@Tags			accounts
//	@Produce		json
//	@Security		BasicAuth
//	@Security		BearerAuth
//	@Success		200	{object}	PrincipalResponse
//	@Failure		401	{object}	Problem
//	@Failure		503	{object}	Problem
//	@Router			/controller/api/accounts/myaccount/principal [get]
func (a *API) myPrincipal(c *gin.Context) {
	p := principal(c)
	c.JSON(http.StatusOK, PrincipalResponse{Kind: string(p.Kind), Name: p.Name, AccountID: p.AccountID, AccountName: p.AccountName,
		Role: p.Role, Permissions: p.Role.Permissions()})
}

// UserResponse is a user of the account (never its password).
type UserResponse struct {
	Name            string            `json:"name" example:"bob"`
	Role            auth.Role         `json:"role" example:"license-viewer"`
	Permissions     []auth.Permission `json:"permissions"`
	CreatedDate     time.Time         `json:"createdDate"`
	LastUpdatedDate time.Time         `json:"lastUpdatedDate"`
}

func userResponse(u auth.User) UserResponse {
	return UserResponse{Name: u.Name, Role: u.Role, Permissions: u.Role.Permissions(),
		CreatedDate: u.CreatedAt, LastUpdatedDate: u.UpdatedAt}
}

// CreateUserRequest creates a basic-auth user.
type CreateUserRequest struct {
	Name     string    `json:"name" binding:"required" example:"bob"`
	Role     auth.Role `json:"role" binding:"required" example:"license-viewer"`
	Password string    `json:"password" binding:"required" example:"correct-horse-battery"`
}

// UpdateUserRequest changes a user's role and/or password.
type UpdateUserRequest struct {
	Role     auth.Role `json:"role,omitempty" example:"license-admin"`
	Password string    `json:"password,omitempty" example:"new-password-123"`
}

// listUsers godoc
//
//	@Summary	List the account's users
//	@Tags		accounts
//	@Produce	json
//	@Security	BasicAuth
//	@Security	BearerAuth
//	@Param		accountId	path		int	true	"account id"
//	@Success	200			{array}		UserResponse
//	@Failure	401			{object}	Problem
//	@Failure	403			{object}	Problem	"ACCOUNT_ADMIN missing"
//	@Failure	404			{object}	Problem	"ACCOUNT_NOT_FOUND"
//	@Failure	503			{object}	Problem
//	@Router		/controller/api/accounts/{accountId}/users [get]
func (a *API) listUsers(c *gin.Context) {
	us, err := a.auth.Users(c.Request.Context(), principal(c).AccountID)
	if err != nil {
		a.fail(c, err)
		return
	}
	out := make([]UserResponse, len(us))
	for i, u := range us {
		out[i] = userResponse(u)
	}
	c.JSON(http.StatusOK, out)
}

// createUser godoc
//
//	@Summary	Create a user
//	@Tags		accounts
//	@Accept		json
//	@Produce	json
//	@Security	BasicAuth
//	@Security	BearerAuth
//	@Param		accountId	path		int					true	"account id"
//	@Param		body		body		CreateUserRequest	true	"the user"
//	@Success	201			{object}	UserResponse
//	@Failure	400			{object}	Problem	"VALIDATION_FAILED"
//	@Failure	401			{object}	Problem
//	@Failure	403			{object}	Problem	"ACCOUNT_ADMIN missing"
//	@Failure	404			{object}	Problem	"ACCOUNT_NOT_FOUND"
//	@Failure	409			{object}	Problem	"USER_EXISTS"
//	@Failure	413			{object}	Problem
//	@Failure	415			{object}	Problem
//	@Failure	503			{object}	Problem
//	@Router		/controller/api/accounts/{accountId}/users [post]
func (a *API) createUser(c *gin.Context) {
	var req CreateUserRequest
	if !a.bindJSON(c, &req) {
		return
	}
	u, err := a.auth.CreateUser(c.Request.Context(), principal(c).AccountID, req.Name, req.Role, req.Password)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.Header("Location", c.Request.URL.Path+"/"+u.Name)
	c.JSON(http.StatusCreated, userResponse(u))
}

// updateUser godoc
//
//	@Summary		Change a user's role or password
//	@Description	Cached credentials of the user are forgotten at once.
//	@Tags			accounts
//	@Accept			json
//	@Produce		json
//	@Security		BasicAuth
//	@Security		BearerAuth
//	@Param			accountId	path		int					true	"account id"
//	@Param			name		path		string				true	"user name"
//	@Param			body		body		UpdateUserRequest	true	"what changes"
//	@Success		200			{object}	UserResponse
//	@Failure		400			{object}	Problem	"VALIDATION_FAILED"
//	@Failure		401			{object}	Problem
//	@Failure		403			{object}	Problem	"ACCOUNT_ADMIN missing"
//	@Failure		404			{object}	Problem	"ACCOUNT_NOT_FOUND, USER_NOT_FOUND"
//	@Failure		413			{object}	Problem
//	@Failure		415			{object}	Problem
//	@Failure		503			{object}	Problem
//	@Router			/controller/api/accounts/{accountId}/users/{name} [put]
func (a *API) updateUser(c *gin.Context) {
	var req UpdateUserRequest
	if !a.bindJSON(c, &req) {
		return
	}
	u, err := a.auth.UpdateUser(c.Request.Context(), principal(c).AccountID, c.Param("name"), req.Role, req.Password)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, userResponse(u))
}

// deleteUser godoc
//
//	@Summary	Delete a user
//	@Tags		accounts
//	@Security	BasicAuth
//	@Security	BearerAuth
//	@Param		accountId	path	int		true	"account id"
//	@Param		name		path	string	true	"user name"
//	@Success	204
//	@Failure	401	{object}	Problem
//	@Failure	403	{object}	Problem	"ACCOUNT_ADMIN missing"
//	@Failure	404	{object}	Problem	"ACCOUNT_NOT_FOUND, USER_NOT_FOUND"
//	@Failure	503	{object}	Problem
//	@Router		/controller/api/accounts/{accountId}/users/{name} [delete]
func (a *API) deleteUser(c *gin.Context) {
	if err := a.auth.DeleteUser(c.Request.Context(), principal(c).AccountID, c.Param("name")); err != nil {
		a.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// APIClientResponse is an OAuth API client. Secret is present only in the
// response that created it.
type APIClientResponse struct {
	Name                 string    `json:"name" example:"monitoring-controller"`
	ClientID             string    `json:"clientId" example:"monitoring-controller@customer1"`
	Description          string    `json:"description"`
	Role                 auth.Role `json:"role" example:"agent-registrar"`
	TokenLifetimeSeconds int64     `json:"tokenLifetimeSeconds" example:"300"`
	CreatedDate          time.Time `json:"createdDate"`
	Secret               string    `json:"secret,omitempty"`
}

// CreateAPIClientRequest creates an API client.
type CreateAPIClientRequest struct {
	Name                 string    `json:"name" binding:"required" example:"monitoring-controller"`
	Description          string    `json:"description" binding:"max=1024"`
	Role                 auth.Role `json:"role" binding:"required" example:"agent-registrar"`
	TokenLifetimeSeconds int64     `json:"tokenLifetimeSeconds" binding:"omitempty,min=1,max=2592000" example:"300"`
}

func (a *API) clientResponse(c *gin.Context, cl auth.APIClient, secret string) APIClientResponse {
	return APIClientResponse{Name: cl.Name, ClientID: cl.Name + "@" + principal(c).AccountName,
		Description: cl.Description, Role: cl.Role, TokenLifetimeSeconds: int64(cl.TokenLifetime / time.Second),
		CreatedDate: cl.CreatedAt, Secret: secret}
}

// listAPIClients godoc
//
//	@Summary	List the account's API clients
//	@Tags		accounts
//	@Produce	json
//	@Security	BasicAuth
//	@Security	BearerAuth
//	@Param		accountId	path		int	true	"account id"
//	@Success	200			{array}		APIClientResponse
//	@Failure	401			{object}	Problem
//	@Failure	403			{object}	Problem	"ACCOUNT_ADMIN missing"
//	@Failure	404			{object}	Problem	"ACCOUNT_NOT_FOUND"
//	@Failure	503			{object}	Problem
//	@Router		/controller/api/accounts/{accountId}/api-clients [get]
func (a *API) listAPIClients(c *gin.Context) {
	cs, err := a.auth.APIClients(c.Request.Context(), principal(c).AccountID)
	if err != nil {
		a.fail(c, err)
		return
	}
	out := make([]APIClientResponse, len(cs))
	for i, cl := range cs {
		out[i] = a.clientResponse(c, cl, "")
	}
	c.JSON(http.StatusOK, out)
}

// createAPIClient godoc
//
//	@Summary		Create an API client
//	@Description	The response carries the client secret; it is shown only once.
//	@Tags			accounts
//	@Accept			json
//	@Produce		json
//	@Security		BasicAuth
//	@Security		BearerAuth
//	@Param			accountId	path		int						true	"account id"
//	@Param			body		body		CreateAPIClientRequest	true	"the client"
//	@Success		201			{object}	APIClientResponse
//	@Failure		400			{object}	Problem	"VALIDATION_FAILED"
//	@Failure		401			{object}	Problem
//	@Failure		403			{object}	Problem	"ACCOUNT_ADMIN missing"
//	@Failure		404			{object}	Problem	"ACCOUNT_NOT_FOUND"
//	@Failure		409			{object}	Problem	"CLIENT_EXISTS"
//	@Failure		413			{object}	Problem
//	@Failure		415			{object}	Problem
//	@Failure		503			{object}	Problem
//	@Router			/controller/api/accounts/{accountId}/api-clients [post]
func (a *API) createAPIClient(c *gin.Context) {
	var req CreateAPIClientRequest
	if !a.bindJSON(c, &req) {
		return
	}
	cl, secret, err := a.auth.CreateAPIClient(c.Request.Context(), principal(c).AccountID, req.Name,
		req.Description, req.Role, time.Duration(req.TokenLifetimeSeconds)*time.Second)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.Header("Location", c.Request.URL.Path+"/"+cl.Name)
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, a.clientResponse(c, cl, secret))
}

// deleteAPIClient godoc
//
//	@Summary	Delete an API client; its tokens stop working
//	@Tags		accounts
//	@Security	BasicAuth
//	@Security	BearerAuth
//	@Param		accountId	path	int		true	"account id"
//	@Param		name		path	string	true	"client name"
//	@Success	204
//	@Failure	401	{object}	Problem
//	@Failure	403	{object}	Problem	"ACCOUNT_ADMIN missing"
//	@Failure	404	{object}	Problem	"ACCOUNT_NOT_FOUND, CLIENT_NOT_FOUND"
//	@Failure	503	{object}	Problem
//	@Router		/controller/api/accounts/{accountId}/api-clients/{name} [delete]
func (a *API) deleteAPIClient(c *gin.Context) {
	if err := a.auth.DeleteAPIClient(c.Request.Context(), principal(c).AccountID, c.Param("name")); err != nil {
		a.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
