package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lcorp/licensing-controller/internal/engine"
	"github.com/lcorp/licensing-controller/internal/fault"
)

// HostDTO is the host an agent runs on; vCpu null or absent = unknown.
type HostDTO struct {
	ID   string `json:"id" binding:"required,max=255" example:"ip-10-117-85-124"`
	Name string `json:"name" binding:"max=255" example:"ip-10-117-85-124"`
	VCPU *int64 `json:"vCpu" example:"16"`
}

// ApplicationDTO is the application an agent monitors.
type ApplicationDTO struct {
	ID   *int64  `json:"id" example:"18156"`
	Name *string `json:"name" binding:"omitempty,max=255" example:"Sangrah-OrderFulfillment"`
}

// RegistrationRequest asks for a licence lease for one agent.
type RegistrationRequest struct {
	AgentID      string          `json:"agentId" binding:"required,max=512" example:"node-42/APP_AGENT"`
	AgentType    string          `json:"agentType" binding:"required" example:"APP_AGENT" enums:"APP_AGENT,DOT_NET_APP_AGENT,PHP_APP_AGENT,NODEJS_APP_AGENT,PYTHON_APP_AGENT,GOLANG_SDK,NATIVE_WEB_SERVER,NATIVE_SDK,DB_AGENT,MACHINE_AGENT,SIM_MACHINE_AGENT,NETVIZ_AGENT"`
	AgentVersion *string         `json:"agentVersion" binding:"omitempty,max=64" example:"24.7.0"`
	LicenseKey   string          `json:"licenseKey" binding:"max=255"`
	Host         *HostDTO        `json:"host" binding:"required"`
	Application  *ApplicationDTO `json:"application"`
	Node         *string         `json:"node" binding:"omitempty,max=255" example:"OrderFulfillmentServiceNode"`
	Tier         *string         `json:"tier" binding:"omitempty,max=255" example:"OrderFulfillmentService"`
	ContainerID  *string         `json:"containerId" binding:"omitempty,max=255" example:"fe8ec1f60b5b"`
}

func (r RegistrationRequest) registration(dryRun bool) engine.Registration {
	in := engine.Registration{AgentID: r.AgentID, AgentType: r.AgentType, AgentVersion: r.AgentVersion,
		LicenseKey: r.LicenseKey, HostID: r.Host.ID, HostName: r.Host.Name, VCPU: r.Host.VCPU,
		Node: r.Node, Tier: r.Tier, ContainerID: r.ContainerID, DryRun: dryRun}
	if in.HostName == "" {
		in.HostName = in.HostID
	}
	if r.Application != nil {
		in.AppID, in.AppName = r.Application.ID, r.Application.Name
	}
	return in
}

// PoolDTO names the allocation or rule of a decision.
type PoolDTO struct {
	Kind string `json:"kind" example:"ALLOCATION" enums:"ALLOCATION,RULE"`
	ID   string `json:"id"`
	Name string `json:"name" example:"order-fulfillment"`
}

// ExplanationDTO says why a decision was taken.
type ExplanationDTO struct {
	MatchedFilters       []string `json:"matchedFilters" example:"APPLICATION ID_EQUALS 18156"`
	UnitsAvailableBefore int64    `json:"unitsAvailableBefore" example:"40"`
	Limit                int64    `json:"limit" example:"100"`
	Reason               *string  `json:"reason" example:"NO_MORE_UNITS"`
}

// DecisionResponse is the engine's answer to a registration. Refusals carry
// it as the problem's "decision" member.
type DecisionResponse struct {
	RegistrationID *string        `json:"registrationId"`
	Status         string         `json:"status" example:"LICENSED" enums:"LICENSED,REFUSED"`
	Pool           PoolDTO        `json:"pool"`
	Package        string         `json:"package" example:"PREMIUM"`
	UnitsCharged   int64          `json:"unitsCharged" example:"16"`
	HostUnits      int64          `json:"hostUnits" example:"16"`
	LeaseExpiresAt *time.Time     `json:"leaseExpiresAt"`
	Explanation    ExplanationDTO `json:"explanation"`
	DryRun         bool           `json:"dryRun,omitempty"`
}

func decisionResponse(d engine.Decision) DecisionResponse {
	out := DecisionResponse{Status: d.Status, Pool: PoolDTO(d.Pool), Package: d.Package, UnitsCharged: d.UnitsCharged,
		HostUnits: d.HostUnits, LeaseExpiresAt: d.LeaseExpiresAt, DryRun: d.DryRun,
		Explanation: ExplanationDTO{MatchedFilters: d.Explanation.MatchedFilters, UnitsAvailableBefore: d.Explanation.UnitsAvailableBefore,
			Limit: d.Explanation.Limit, Reason: d.Explanation.Reason}}
	if out.Explanation.MatchedFilters == nil {
		out.Explanation.MatchedFilters = []string{}
	}
	if d.RegistrationID != "" && !d.DryRun {
		out.RegistrationID = &d.RegistrationID
	}
	if d.DryRun {
		out.LeaseExpiresAt = nil
	}
	return out
}

// register godoc
//
//	@Summary		Register an agent: grant or refuse a licence lease
//	@Description	201 with the decision when granted, 200 when the agent already holds a lease (idempotent by agentId). A refusal is a problem whose "decision" member explains it. With dryRun=true the decision is computed and nothing is stored (200).
//	@Tags			registrations
//	@Accept			json
//	@Produce		json
//	@Security		BasicAuth
//	@Security		BearerAuth
//	@Param			accountId	path		int					true	"account id"
//	@Param			dryRun		query		bool				false	"decide without storing"
//	@Param			body		body		RegistrationRequest	true	"the agent"
//	@Success		200			{object}	DecisionResponse	"already licensed, or dry run"
//	@Success		201			{object}	DecisionResponse
//	@Failure		400			{object}	Problem	"VALIDATION_FAILED"
//	@Failure		401			{object}	Problem
//	@Failure		403			{object}	Problem	"PERMISSION_DENIED, DENIED_BY_FILTER, PACKAGE_NOT_LICENSED, LICENSE_EXPIRED, NO_LICENSE, RULE_DISABLED, ALLOCATION_DISABLED"
//	@Failure		404			{object}	Problem	"ACCOUNT_NOT_FOUND, UNKNOWN_LICENSE_KEY"
//	@Failure		409			{object}	Problem	"NO_MORE_UNITS, FALLBACK_DELAY (with Retry-After), AGENT_ID_IN_USE (the agentId holds a lease for another licenseKey, host or agentType)"
//	@Failure		413			{object}	Problem
//	@Failure		415			{object}	Problem
//	@Failure		503			{object}	Problem
//	@Router			/controller/licensing/v1/account/{accountId}/registrations [post]
func (a *API) register(c *gin.Context) {
	var req RegistrationRequest
	if !a.bindJSON(c, &req) {
		return
	}
	dryRun, ok := a.dryRun(c)
	if !ok {
		return
	}
	dec, err := a.eng.Register(c.Request.Context(), accountID(c), req.registration(dryRun))
	if err != nil {
		if fe, ok := fault.As(err); ok {
			if d, ok := fe.Extra["decision"].(engine.Decision); ok {
				fe.Extra["decision"] = decisionResponse(d)
			}
		}
		a.fail(c, err)
		return
	}
	status := http.StatusCreated
	if dec.Existing || dryRun {
		status = http.StatusOK
	} else {
		c.Header("Location", c.Request.URL.Path+"/"+dec.RegistrationID)
	}
	c.JSON(status, decisionResponse(dec))
}

// HeartbeatRequest may report the host's vCPU.
type HeartbeatRequest struct {
	VCPU *int64 `json:"vCpu" example:"16"`
}

// HeartbeatResponse is a renewed lease.
type HeartbeatResponse struct {
	RegistrationID string    `json:"registrationId"`
	LeaseExpiresAt time.Time `json:"leaseExpiresAt"`
	Package        string    `json:"package" example:"PREMIUM"`
	HostUnits      int64     `json:"hostUnits" example:"16"`
	// VCPUApplied is present when the heartbeat reported a vCpu: false
	// when the host keeps its old charge, with the reason.
	VCPUApplied *bool  `json:"vCpuApplied,omitempty" example:"true"`
	Reason      string `json:"reason,omitempty" example:"NO_MORE_UNITS"`
}

// heartbeat godoc
//
//	@Summary		Keep a lease alive
//	@Description	The body is optional; a vCpu re-charges the host with its real vCPU at once where it fits. A revoked lease answers 409 with its code (PREEMPTED) once and is gone.
//	@Tags			registrations
//	@Accept			json
//	@Produce		json
//	@Security		BasicAuth
//	@Security		BearerAuth
//	@Param			accountId		path		int					true	"account id"
//	@Param			registrationId	path		string				true	"registration id"
//	@Param			body			body		HeartbeatRequest	false	"new vCPU of the host"
//	@Success		200				{object}	HeartbeatResponse
//	@Failure		400				{object}	Problem	"VALIDATION_FAILED"
//	@Failure		401				{object}	Problem
//	@Failure		403				{object}	Problem	"PERMISSION_DENIED"
//	@Failure		404				{object}	Problem	"ACCOUNT_NOT_FOUND, REGISTRATION_NOT_FOUND"
//	@Failure		409				{object}	Problem	"PREEMPTED"
//	@Failure		503				{object}	Problem
//	@Router			/controller/licensing/v1/account/{accountId}/registrations/{registrationId}/heartbeat [post]
func (a *API) heartbeat(c *gin.Context) {
	var req HeartbeatRequest
	if c.Request.ContentLength != 0 && !a.bindJSONBody(c, &req, true) {
		return
	}
	res, err := a.eng.Heartbeat(c.Request.Context(), accountID(c), c.Param("registrationId"), req.VCPU)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, HeartbeatResponse{RegistrationID: res.RegistrationID, LeaseExpiresAt: res.LeaseExpiresAt,
		Package: res.Package, HostUnits: res.HostUnits, VCPUApplied: res.VCPUApplied, Reason: res.Reason})
}

// BatchHeartbeatRequest renews many leases at once.
type BatchHeartbeatRequest struct {
	IDs []string `json:"ids" binding:"required,min=1,max=10000,dive,min=1,max=128"`
}

// RevokedDTO is a lease that was revoked.
type RevokedDTO struct {
	ID   string `json:"id"`
	Code string `json:"code" example:"PREEMPTED"`
}

// BatchHeartbeatResponse says what became of each id.
type BatchHeartbeatResponse struct {
	Renewed int          `json:"renewed" example:"998"`
	Unknown []string     `json:"unknown"`
	Revoked []RevokedDTO `json:"revoked"`
}

// heartbeats godoc
//
//	@Summary		Keep many leases alive (up to 10 000 ids)
//	@Tags			registrations
//	@Accept			json
//	@Produce		json
//	@Security		BasicAuth
//	@Security		BearerAuth
//	@Param			accountId	path		int						true	"account id"
//	@Param			body		body		BatchHeartbeatRequest	true	"registration ids"
//	@Success		200			{object}	BatchHeartbeatResponse
//	@Failure		400			{object}	Problem	"VALIDATION_FAILED"
//	@Failure		401			{object}	Problem
//	@Failure		403			{object}	Problem	"PERMISSION_DENIED"
//	@Failure		404			{object}	Problem	"ACCOUNT_NOT_FOUND"
//	@Failure		503			{object}	Problem
//	@Router			/controller/licensing/v1/account/{accountId}/registrations/heartbeats [post]
func (a *API) heartbeats(c *gin.Context) {
	var req BatchHeartbeatRequest
	if !a.bindJSON(c, &req) {
		return
	}
	res, err := a.eng.HeartbeatBatch(c.Request.Context(), accountID(c), req.IDs)
	if err != nil {
		a.fail(c, err)
		return
	}
	out := BatchHeartbeatResponse{Renewed: res.Renewed, Unknown: res.Unknown, Revoked: make([]RevokedDTO, len(res.Revoked))}
	for i, r := range res.Revoked {
		out.Revoked[i] = RevokedDTO(r)
	}
	c.JSON(http.StatusOK, out)
}

// release godoc
//
//	@Summary	Release a lease
//	@Tags		registrations
//	@Security	BasicAuth
//	@Security	BearerAuth
//	@Param		accountId		path	int		true	"account id"
//	@Param		registrationId	path	string	true	"registration id"
//	@Success	204
//	@Failure	401	{object}	Problem
//	@Failure	403	{object}	Problem	"PERMISSION_DENIED"
//	@Failure	404	{object}	Problem	"ACCOUNT_NOT_FOUND, REGISTRATION_NOT_FOUND"
//	@Failure	503	{object}	Problem
//	@Router		/controller/licensing/v1/account/{accountId}/registrations/{registrationId} [delete]
func (a *API) release(c *gin.Context) {
	if err := a.eng.Release(c.Request.Context(), accountID(c), c.Param("registrationId")); err != nil {
		a.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// LeaseDTO is a live lease.
type LeaseDTO struct {
	RegistrationID  string          `json:"registrationId"`
	AgentID         string          `json:"agentId"`
	AgentType       string          `json:"agentType"`
	AgentVersion    *string         `json:"agentVersion"`
	LicenseKey      string          `json:"licenseKey"`
	Pool            PoolDTO         `json:"pool"`
	Package         string          `json:"package"`
	UnitsCharged    int64           `json:"unitsCharged"`
	Host            HostDTO         `json:"host"`
	Application     *ApplicationDTO `json:"application"`
	Node            *string         `json:"node"`
	Tier            *string         `json:"tier"`
	ContainerID     *string         `json:"containerId"`
	GrantedAt       time.Time       `json:"grantedAt"`
	LastHeartbeatAt time.Time       `json:"lastHeartbeatAt"`
	LeaseExpiresAt  time.Time       `json:"leaseExpiresAt"`
}

// LeasePage is a page of leases.
type LeasePage struct {
	Data []LeaseDTO `json:"data"`
	Next *string    `json:"next"`
}

// listRegistrations godoc
//
//	@Summary	Live leases, filterable by host, application, agent type and licence key
//	@Tags		registrations
//	@Produce	json
//	@Security	BasicAuth
//	@Security	BearerAuth
//	@Param		accountId	path		int		true	"account id"
//	@Param		host		query		string	false	"host id"
//	@Param		appId		query		int		false	"application id"
//	@Param		agentType	query		string	false	"agent type"
//	@Param		licenseKey	query		string	false	"licence key"
//	@Param		size		query		int		false	"page size (1-1000, default 100)"
//	@Param		offset		query		int		false	"items to skip"
//	@Success	200			{object}	LeasePage
//	@Failure	400			{object}	Problem	"VALIDATION_FAILED"
//	@Failure	401			{object}	Problem
//	@Failure	403			{object}	Problem	"PERMISSION_DENIED"
//	@Failure	404			{object}	Problem	"ACCOUNT_NOT_FOUND"
//	@Failure	503			{object}	Problem
//	@Router		/controller/licensing/v1/account/{accountId}/registrations [get]
func (a *API) listRegistrations(c *gin.Context) {
	size, offset, ok := a.page(c)
	if !ok {
		return
	}
	q := engine.LeaseQuery{AccountID: accountID(c), Host: c.Query("host"), AgentType: c.Query("agentType"),
		LicenseKey: c.Query("licenseKey"), Offset: offset, Limit: size + 1}
	if s := c.Query("appId"); s != "" {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			a.fail(c, fault.Invalid("appId", "must be an integer"))
			return
		}
		q.AppID = &id
	}
	ls, err := a.eng.Leases(c.Request.Context(), q)
	if err != nil {
		a.fail(c, err)
		return
	}
	out := LeasePage{Data: []LeaseDTO{}}
	if len(ls) > size {
		ls, out.Next = ls[:size], nextPage(c, size, offset)
	}
	for _, l := range ls {
		d := LeaseDTO{RegistrationID: l.ID, AgentID: l.AgentID, AgentType: l.AgentType, AgentVersion: l.AgentVersion,
			LicenseKey: l.LicenseKey, Pool: PoolDTO{Kind: l.PoolKind, ID: l.PoolID, Name: l.PoolName}, Package: l.Package,
			UnitsCharged: l.UnitsCharged, Host: HostDTO{ID: l.HostID, Name: l.HostName, VCPU: l.HostVCPU}, Node: l.Node, Tier: l.Tier, ContainerID: l.ContainerID,
			GrantedAt: l.GrantedAt, LastHeartbeatAt: l.HeartbeatAt, LeaseExpiresAt: l.ExpiresAt}
		if l.AppID != nil || l.AppName != nil {
			d.Application = &ApplicationDTO{ID: l.AppID, Name: l.AppName}
		}
		out.Data = append(out.Data, d)
	}
	c.JSON(http.StatusOK, out)
}
