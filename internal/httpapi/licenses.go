package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lcorp/licensing-controller/internal/fault"
	"github.com/lcorp/licensing-controller/internal/licensing"
)

// LicenseResponse is a stored licence, Kong style (epoch-second dates).
type LicenseResponse struct {
	ID        string `json:"id" example:"30b4edb7-0847-4f65-af90-efbed8b0161f"`
	Payload   string `json:"payload"`
	CreatedAt int64  `json:"created_at" example:"1500508800"`
	UpdatedAt int64  `json:"updated_at" example:"1500508800"`
}

// LicenseList is a page of licences.
type LicenseList struct {
	Data []LicenseResponse `json:"data"`
	Next *string           `json:"next"`
}

// LicenseRequest carries a signed licence document as a JSON string.
type LicenseRequest struct {
	Payload string `json:"payload" binding:"required"`
}

func licenseResponse(l licensing.License) LicenseResponse {
	doc := l.Document
	if l.Builtin {
		b, _ := jsonString(map[string]any{"license": map[string]any{"version": "1", "signature": "", "payload": l.Payload}})
		doc = b
	}
	return LicenseResponse{ID: l.ID, Payload: doc, CreatedAt: l.CreatedAt.Unix(), UpdatedAt: l.UpdatedAt.Unix()}
}

func accountID(c *gin.Context) int64 { return principal(c).AccountID }

// listLicenses godoc
//
//	@Summary	List the account's licences, newest first
//	@Tags		licences
//	@Produce	json
//	@Security	BasicAuth
//	@Security	BearerAuth
//	@Param		accountId	path		int	true	"account id"
//	@Param		size		query		int	false	"page size (default 100, max 1000)"
//	@Param		offset		query		int	false	"items to skip"
//	@Success	200			{object}	LicenseList
//	@Failure	400			{object}	Problem
//	@Failure	401			{object}	Problem
//	@Failure	403			{object}	Problem	"ACCOUNT_LICENSE missing"
//	@Failure	404			{object}	Problem	"ACCOUNT_NOT_FOUND"
//	@Failure	503			{object}	Problem
//	@Router		/controller/licensing/v1/account/{accountId}/licenses [get]
func (a *API) listLicenses(c *gin.Context) {
	size, offset, ok := a.page(c)
	if !ok {
		return
	}
	ls, err := a.lic.Licenses(c.Request.Context(), accountID(c), offset, size+1)
	if err != nil {
		a.fail(c, err)
		return
	}
	out := LicenseList{Data: []LicenseResponse{}}
	if len(ls) > size {
		ls, out.Next = ls[:size], nextPage(c, size, offset)
	}
	for _, l := range ls {
		out.Data = append(out.Data, licenseResponse(l))
	}
	c.JSON(http.StatusOK, out)
}

// page reads the size (1-1000, default 100) and offset of a listing; it
// writes the 400 and returns ok false when either is bad. Listings fetch
// size+1 items to know whether a next page exists.
func (a *API) page(c *gin.Context) (size, offset int, ok bool) {
	size, bad1 := intQuery(c, "size", 100, 1, 1000)
	offset, bad2 := intQuery(c, "offset", 0, 0, 1<<31-1)
	if err := fault.Invalids(append(bad1, bad2...)); err != nil {
		a.fail(c, err)
		return 0, 0, false
	}
	return size, offset, true
}

// nextPage is the link to the page after this one, with the request's
// other query parameters (filters) kept.
func nextPage(c *gin.Context, size, offset int) *string {
	q := c.Request.URL.Query()
	q.Set("size", strconv.Itoa(size))
	q.Set("offset", strconv.Itoa(offset+size))
	next := c.Request.URL.Path + "?" + q.Encode()
	return &next
}

func intQuery(c *gin.Context, name string, def, lo, hi int) (int, []fault.FieldError) {
	v := c.Query(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, []fault.FieldError{{Field: name, Message: fmt.Sprintf("must be an integer from %d to %d", lo, hi)}}
	}
	return n, nil
}

// getLicense godoc
//
//	@Summary	One licence
//	@Tags		licences
//	@Produce	json
//	@Security	BasicAuth
//	@Security	BearerAuth
//	@Param		accountId	path		int		true	"account id"
//	@Param		id			path		string	true	"licence id"
//	@Success	200			{object}	LicenseResponse
//	@Failure	401			{object}	Problem
//	@Failure	403			{object}	Problem	"ACCOUNT_LICENSE missing"
//	@Failure	404			{object}	Problem	"ACCOUNT_NOT_FOUND, LICENSE_NOT_FOUND"
//	@Failure	503			{object}	Problem
//	@Router		/controller/licensing/v1/account/{accountId}/licenses/{id} [get]
func (a *API) getLicense(c *gin.Context) {
	l, err := a.lic.License(c.Request.Context(), accountID(c), c.Param("id"))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, licenseResponse(l))
}

// postLicense godoc
//
//	@Summary		Add a signed licence
//	@Description	The payload is the licence document as a JSON string. Invalid JSON, a bad signature, an unknown key, another account's licence or an expired one give 400 INVALID_LICENSE with the reason.
//	@Tags			licences
//	@Accept			json
//	@Produce		json
//	@Security		BasicAuth
//	@Security		BearerAuth
//	@Param			accountId	path		int				true	"account id"
//	@Param			body		body		LicenseRequest	true	"the licence"
//	@Success		201			{object}	LicenseResponse
//	@Failure		400			{object}	Problem	"INVALID_LICENSE, VALIDATION_FAILED"
//	@Failure		401			{object}	Problem
//	@Failure		403			{object}	Problem	"LICENSE_WRITE missing"
//	@Failure		404			{object}	Problem	"ACCOUNT_NOT_FOUND"
//	@Failure		413			{object}	Problem
//	@Failure		415			{object}	Problem
//	@Failure		503			{object}	Problem
//	@Router			/controller/licensing/v1/account/{accountId}/licenses [post]
func (a *API) postLicense(c *gin.Context) { a.putLicense(c, "", false) }

// replaceLicense godoc
//
//	@Summary	Create a licence with this id, or replace it
//	@Tags		licences
//	@Accept		json
//	@Produce	json
//	@Security	BasicAuth
//	@Security	BearerAuth
//	@Param		accountId	path		int				true	"account id"
//	@Param		id			path		string			true	"licence id (UUID)"
//	@Param		body		body		LicenseRequest	true	"the licence"
//	@Success	200			{object}	LicenseResponse
//	@Failure	400			{object}	Problem	"INVALID_LICENSE, VALIDATION_FAILED (id not a UUID)"
//	@Failure	401			{object}	Problem
//	@Failure	403			{object}	Problem	"LICENSE_WRITE missing"
//	@Failure	404			{object}	Problem	"ACCOUNT_NOT_FOUND"
//	@Failure	413			{object}	Problem
//	@Failure	415			{object}	Problem
//	@Failure	503			{object}	Problem
//	@Router		/controller/licensing/v1/account/{accountId}/licenses/{id} [put]
func (a *API) replaceLicense(c *gin.Context) { a.putLicense(c, c.Param("id"), false) }

// patchLicense godoc
//
//	@Summary	Replace the payload of an existing licence
//	@Tags		licences
//	@Accept		json
//	@Produce	json
//	@Security	BasicAuth
//	@Security	BearerAuth
//	@Param		accountId	path		int				true	"account id"
//	@Param		id			path		string			true	"licence id"
//	@Param		body		body		LicenseRequest	true	"the licence"
//	@Success	200			{object}	LicenseResponse
//	@Failure	400			{object}	Problem	"INVALID_LICENSE, VALIDATION_FAILED"
//	@Failure	401			{object}	Problem
//	@Failure	403			{object}	Problem	"LICENSE_WRITE missing"
//	@Failure	404			{object}	Problem	"ACCOUNT_NOT_FOUND, LICENSE_NOT_FOUND"
//	@Failure	413			{object}	Problem
//	@Failure	415			{object}	Problem
//	@Failure	503			{object}	Problem
//	@Router		/controller/licensing/v1/account/{accountId}/licenses/{id} [patch]
func (a *API) patchLicense(c *gin.Context) { a.putLicense(c, c.Param("id"), true) }

func (a *API) putLicense(c *gin.Context, id string, mustExist bool) {
	var req LicenseRequest
	if !a.bindJSON(c, &req) {
		return
	}
	// The licence document inside is JSON too, and gets the same hygiene:
	// a signed document must not smuggle NUL bytes or duplicate keys in.
	if _, err := checkJSON([]byte(req.Payload), nil); err != nil {
		msg := "is not a licence document: " + err.Error()
		if fe, ok := fault.As(err); ok && len(fe.Fields) == 1 {
			msg = "holds a licence document whose " + fe.Fields[0].Field + " " + fe.Fields[0].Message
		}
		a.fail(c, &fault.Error{Kind: fault.ErrInvalid, Code: "INVALID_LICENSE", Detail: "payload " + msg,
			Fields: []fault.FieldError{{Field: "payload", Message: msg}}})
		return
	}
	l, created, err := a.lic.PutLicense(c.Request.Context(), accountID(c), id, req.Payload, mustExist)
	if err != nil {
		a.fail(c, err)
		return
	}
	status := http.StatusOK
	if id == "" && created {
		status = http.StatusCreated
		c.Header("Location", c.Request.URL.Path+"/"+l.ID)
	}
	c.JSON(status, licenseResponse(l))
}

// deleteLicense godoc
//
//	@Summary	Delete a licence
//	@Tags		licences
//	@Security	BasicAuth
//	@Security	BearerAuth
//	@Param		accountId	path	int		true	"account id"
//	@Param		id			path	string	true	"licence id"
//	@Success	204
//	@Failure	401	{object}	Problem
//	@Failure	403	{object}	Problem	"LICENSE_WRITE missing"
//	@Failure	404	{object}	Problem	"ACCOUNT_NOT_FOUND, LICENSE_NOT_FOUND"
//	@Failure	503	{object}	Problem
//	@Router		/controller/licensing/v1/account/{accountId}/licenses/{id} [delete]
func (a *API) deleteLicense(c *gin.Context) {
	if err := a.lic.DeleteLicense(c.Request.Context(), accountID(c), c.Param("id")); err != nil {
		a.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// PackageResponse is one package of /info.
type PackageResponse struct {
	PackageName    string         `json:"packageName" example:"PREMIUM"`
	Type           string         `json:"type" example:"PAID"`
	Kind           string         `json:"kind" example:"INFRASTRUCTURE_BASED"`
	Family         string         `json:"family" example:"APM"`
	CreatedDate    *time.Time     `json:"createdDate"`
	StartDate      *time.Time     `json:"startDate"`
	ExpirationDate *time.Time     `json:"expirationDate"`
	LicenseUnits   int64          `json:"licenseUnits" example:"100"`
	Properties     map[string]any `json:"properties"`
}

// InfoResponse is the account's effective licence (API.md §1.2).
type InfoResponse struct {
	AccountID           int64             `json:"accountId" example:"1"`
	LicenseID           string            `json:"licenseId"`
	CustomerID          string            `json:"customerId"`
	CustomerName        string            `json:"customerName"`
	Environment         string            `json:"environment" example:"PROD"`
	HardwareFingerprint string            `json:"hardwareFingerprint" example:"ANY"`
	Type                string            `json:"type" example:"ONPREM-ACCOUNT"`
	ExpirationDate      time.Time         `json:"expirationDate"`
	Status              string            `json:"status" example:"ACTIVE" enums:"ACTIVE,LIMITED,EXPIRED"`
	Packages            []PackageResponse `json:"packages"`
	Properties          map[string]any    `json:"properties"`
	FallbackUnits       map[string]int64  `json:"fallbackUnits"`
	OverAllocated       bool              `json:"overAllocated"`
}

// accountInfo godoc
//
//	@Summary	The account's effective licence with its status
//	@Tags		licences
//	@Produce	json
//	@Security	BasicAuth
//	@Security	BearerAuth
//	@Param		accountId	path		int	true	"account id"
//	@Success	200			{object}	InfoResponse
//	@Failure	401			{object}	Problem
//	@Failure	403			{object}	Problem	"ACCOUNT_LICENSE missing"
//	@Failure	404			{object}	Problem	"ACCOUNT_NOT_FOUND, NO_LICENSE"
//	@Failure	503			{object}	Problem
//	@Router		/controller/licensing/v1/account/{accountId}/info [get]
func (a *API) accountInfo(c *gin.Context) {
	info, err := a.lic.AccountInfo(c.Request.Context(), accountID(c))
	if err != nil {
		a.fail(c, err)
		return
	}
	a.infoBodies.mu.Lock()
	cached, ok := a.infoBodies.m[info.AccountID]
	a.infoBodies.mu.Unlock()
	if !ok || cached.version != info.Version {
		body, err := json.Marshal(infoResponse(info))
		if err != nil {
			a.fail(c, fmt.Errorf("encode info: %w", err))
			return
		}
		cached = renderedInfo{version: info.Version, body: body}
		a.infoBodies.mu.Lock()
		if a.infoBodies.m == nil || len(a.infoBodies.m) >= 10000 {
			a.infoBodies.m = map[int64]renderedInfo{}
		}
		a.infoBodies.m[info.AccountID] = cached
		a.infoBodies.mu.Unlock()
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", cached.body)
}

// renderedInfo is an /info answer encoded once per Info.Version: most
// calls of an account see the same one.
type renderedInfo struct {
	version string
	body    []byte
}

type infoCache struct {
	mu sync.Mutex
	m  map[int64]renderedInfo
}

func infoResponse(info licensing.Info) InfoResponse {
	p := info.License.Payload
	out := InfoResponse{AccountID: info.AccountID, LicenseID: p.LicenseID, CustomerID: p.CustomerID,
		CustomerName: p.CustomerName, Environment: p.Environment, HardwareFingerprint: p.HardwareFingerprint,
		Type: p.Type, ExpirationDate: p.ExpirationDate.UTC(), Status: info.Status, Packages: []PackageResponse{},
		Properties: orEmpty(p.Properties), FallbackUnits: p.FallbackUnits, OverAllocated: info.OverAllocated}
	if out.FallbackUnits == nil {
		out.FallbackUnits = map[string]int64{}
	}
	for _, pk := range p.Packages {
		out.Packages = append(out.Packages, PackageResponse{PackageName: pk.PackageName, Type: pk.Type, Kind: pk.Kind,
			Family: pk.Family, CreatedDate: pk.CreatedDate, StartDate: pk.StartDate, ExpirationDate: pk.ExpirationDate,
			LicenseUnits: pk.LicenseUnits, Properties: orEmpty(pk.Properties)})
	}
	return out
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}
