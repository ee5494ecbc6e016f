package httpapi

import (
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lcorp/licensing-controller/internal/fault"
	"github.com/lcorp/licensing-controller/internal/licensing"
)

// The entity types of AppDynamics licence-rule constraints.
const (
	ApplicationEntity = "com.appdynamics.modules.apm.topology.impl.persistenceapi.model.ApplicationEntity"
	MachineEntity     = "com.appdynamics.modules.apm.topology.impl.persistenceapi.model.MachineEntity"
)

// ConstraintDTO is a licence-rule constraint in the AppDynamics shape: on
// the agent's application (ApplicationEntity) or its host (MachineEntity),
// ALLOW_ALL or ALLOW_SELECTED with at least one condition.
type ConstraintDTO struct {
	EntityTypeID    string              `json:"entity_type_id" binding:"required,oneof=com.appdynamics.modules.apm.topology.impl.persistenceapi.model.ApplicationEntity com.appdynamics.modules.apm.topology.impl.persistenceapi.model.MachineEntity" example:"com.appdynamics.modules.apm.topology.impl.persistenceapi.model.ApplicationEntity"`
	ConstraintType  string              `json:"constraint_type" binding:"required,oneof=ALLOW_ALL ALLOW_SELECTED" example:"ALLOW_SELECTED"`
	MatchConditions []MatchConditionDTO `json:"match_conditions" binding:"omitempty,dive"`
}

// MatchConditionDTO is one condition of an ALLOW_SELECTED constraint: ID
// compares the application id or host id (EQUALS only), NAME the name.
type MatchConditionDTO struct {
	MatchType     string `json:"match_type" binding:"required,oneof=EQUALS STARTS_WITH ENDS_WITH CONTAINS REGEX" example:"STARTS_WITH"`
	AttributeType string `json:"attribute_type" binding:"required,oneof=NAME ID" example:"NAME"`
	MatchString   string `json:"match_string" binding:"required,max=1024" example:"DES_Demo"`
}

// constraint converts the wire shape into the domain's: conditions become
// filters of the entity's type with the operator the attribute implies.
func (c ConstraintDTO) constraint(i int) (licensing.Constraint, []fault.FieldError) {
	out := licensing.Constraint{Type: licensing.FilterApplication, AllowAll: c.ConstraintType == "ALLOW_ALL",
		Conditions: []licensing.Filter{}}
	if c.EntityTypeID == MachineEntity {
		out.Type = licensing.FilterHost
	}
	var bad []fault.FieldError
	for j, m := range c.MatchConditions {
		op := m.MatchType
		switch {
		case m.AttributeType == "ID" && m.MatchType != "EQUALS":
			bad = append(bad, fault.FieldError{Field: fmt.Sprintf("constraints[%d].match_conditions[%d].match_type", i, j),
				Message: "must be EQUALS with attribute_type ID"})
		case m.AttributeType == "ID":
			op = licensing.OpIDEquals
		case out.Type == licensing.FilterHost && m.MatchType == "EQUALS":
			op = licensing.OpNameEquals // HOST EQUALS compares the host id
		}
		out.Conditions = append(out.Conditions, licensing.Filter{Type: out.Type, Operator: op, Value: m.MatchString})
	}
	return out, bad
}

// constraintDTO is the wire shape of a domain constraint.
func constraintDTO(c licensing.Constraint) ConstraintDTO {
	out := ConstraintDTO{EntityTypeID: ApplicationEntity, ConstraintType: "ALLOW_SELECTED", MatchConditions: []MatchConditionDTO{}}
	if c.Type == licensing.FilterHost {
		out.EntityTypeID = MachineEntity
	}
	if c.AllowAll {
		out.ConstraintType = "ALLOW_ALL"
	}
	for _, f := range c.Conditions {
		m := MatchConditionDTO{MatchType: f.Operator, AttributeType: "NAME", MatchString: f.Value}
		switch {
		case f.Operator == licensing.OpIDEquals, f.Type == licensing.FilterHost && f.Operator == licensing.OpEquals:
			m.MatchType, m.AttributeType = "EQUALS", "ID"
		case f.Operator == licensing.OpNameEquals:
			m.MatchType = "EQUALS"
		}
		out.MatchConditions = append(out.MatchConditions, m)
	}
	return out
}

// EntitlementDTO is a number of licences of one agent module.
type EntitlementDTO struct {
	LicenseModuleType string `json:"license_module_type" binding:"required" example:"JAVA" enums:"JAVA,DOT_NET,NATIVE_WEB_SERVER,NATIVE_SDK,NETVIZ,MACHINE_AGENT,SIM_MACHINE_AGENT,NODEJS,PHP,PYTHON,GOLANG_SDK,APM"`
	NumberOfLicenses  *int64 `json:"number_of_licenses" binding:"required" example:"100"`
}

// RuleRequest creates (POST, version 0) or replaces (PUT, the version read)
// a licence rule. total_licenses and peak_usage are server-owned: accepted
// and ignored, so a rule read with GET can be sent back as it is.
type RuleRequest struct {
	ID            string           `json:"id" example:"011116a4-124c-4b73-9343-f315836f103b"`
	Version       *int64           `json:"version" example:"0"`
	Name          string           `json:"name" binding:"required" example:"Default_API9"`
	Description   *string          `json:"description"`
	Enabled       *bool            `json:"enabled" example:"true"`
	Constraints   []ConstraintDTO  `json:"constraints" binding:"omitempty,dive"`
	Entitlements  []EntitlementDTO `json:"entitlements" binding:"omitempty,max=64,dive"`
	AccountID     string           `json:"account_id" example:"8b1e92f2-387c-45b6-9bb5-ebd7f67587d4"`
	AccessKey     string           `json:"access_key" example:"ap1845ad-1f3e-4c9b-909b-a3cfa510bfb0"`
	TotalLicenses *int64           `json:"total_licenses" swaggerignore:"true"`
	PeakUsage     *int64           `json:"peak_usage" swaggerignore:"true"`
}

func (r RuleRequest) input() (licensing.RuleInput, error) {
	in := licensing.RuleInput{ID: r.ID, Name: r.Name, Description: r.Description, Enabled: true,
		AccessKey: r.AccessKey, AccountID: r.AccountID}
	if r.Version != nil {
		in.Version = *r.Version
	}
	if r.Enabled != nil {
		in.Enabled = *r.Enabled
	}
	var bad []fault.FieldError
	for i, c := range r.Constraints {
		dc, errs := c.constraint(i)
		in.Constraints, bad = append(in.Constraints, dc), append(bad, errs...)
	}
	for _, e := range r.Entitlements {
		in.Entitlements = append(in.Entitlements, licensing.Entitlement{ModuleType: e.LicenseModuleType, Licenses: *e.NumberOfLicenses})
	}
	return in, fault.Invalids(bad)
}

// RuleResponse is a licence rule as the seed shows it.
type RuleResponse struct {
	ID            string           `json:"id" example:"011116a4-124c-4b73-9343-f315836f103b"`
	Version       int64            `json:"version" example:"0"`
	Name          string           `json:"name" example:"Default_API9"`
	Description   *string          `json:"description"`
	Enabled       bool             `json:"enabled" example:"true"`
	Constraints   []ConstraintDTO  `json:"constraints"`
	Entitlements  []EntitlementDTO `json:"entitlements"`
	AccountID     string           `json:"account_id" example:"8b1e92f2-387c-45b6-9bb5-ebd7f67587d4"`
	AccessKey     string           `json:"access_key" example:"ap1845ad-1f3e-4c9b-909b-a3cfa510bfb0"`
	TotalLicenses int64            `json:"total_licenses" example:"1000"`
	PeakUsage     *int64           `json:"peak_usage"`
	// Usage is the licences in use now per module (only with ?includeUsage=true on the list).
	Usage []PoolUsageDTO `json:"usage,omitempty"`
}

// RuleVersionResponse is one version of a rule in its history.
type RuleVersionResponse struct {
	RuleResponse
	ChangedBy string    `json:"changed_by" example:"admin@customer1"`
	ChangedAt time.Time `json:"changed_at"`
}

func ruleResponse(r licensing.Rule, summary bool) RuleResponse {
	out := RuleResponse{ID: r.ID, Version: r.Version, Name: r.Name, Description: r.Description, Enabled: r.Enabled,
		Constraints: []ConstraintDTO{}, Entitlements: []EntitlementDTO{}, AccountID: r.AccountGlobalID,
		AccessKey: r.AccessKey, TotalLicenses: r.TotalLicenses(), PeakUsage: r.PeakUsage}
	if summary { // the list is a summary: no constraints or entitlements (as in the seed)
		return out
	}
	for _, c := range r.Constraints {
		out.Constraints = append(out.Constraints, constraintDTO(c))
	}
	for _, e := range r.Entitlements {
		n := e.Licenses
		out.Entitlements = append(out.Entitlements, EntitlementDTO{LicenseModuleType: e.ModuleType, NumberOfLicenses: &n})
	}
	return out
}

// listRules godoc
//
//	@Summary		Summaries of the account's licence rules
//	@Description	constraints and entitlements are empty in the summaries; total_licenses is their sum.
//	@Tags			licence rules
//	@Produce		json
//	@Security		BasicAuth
//	@Security		BearerAuth
//	@Param			includeUsage	query		bool	false	"add each rule's licences in use now per module (used and limit)"
//	@Success		200				{array}		RuleResponse
//	@Failure		400				{object}	Problem	"VALIDATION_FAILED"
//	@Failure		401				{object}	Problem
//	@Failure		403				{object}	Problem	"LICENSE_RULE missing"
//	@Failure		503				{object}	Problem
//	@Router			/controller/mds/v1/license/rules [get]
//	@Router			/mds/v1/license/rules [get]
func (a *API) listRules(c *gin.Context) {
	rs, err := a.lic.Rules(c.Request.Context(), principal(c).AccountID)
	if err != nil {
		a.fail(c, err)
		return
	}
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.ID
	}
	usage, ok := a.includeUsage(c, ids)
	if !ok {
		return
	}
	out := make([]RuleResponse, len(rs))
	for i, r := range rs {
		out[i] = ruleResponse(r, true)
		if usage != nil {
			out[i].Usage = []PoolUsageDTO{}
			for _, e := range r.Entitlements {
				out[i].Usage = append(out[i].Usage, PoolUsageDTO{Package: e.ModuleType, Used: usage[r.ID][e.ModuleType], Limit: e.Licenses})
			}
		}
	}
	c.JSON(http.StatusOK, out)
}

func (a *API) writeRule(c *gin.Context, by licensing.RuleLookup) {
	r, err := a.lic.Rule(c.Request.Context(), principal(c).AccountID, by)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, ruleResponse(r, false))
}

// getRule godoc
//
//	@Summary	A full licence rule by id
//	@Tags		licence rules
//	@Produce	json
//	@Security	BasicAuth
//	@Security	BearerAuth
//	@Param		id	path		string	true	"rule id (UUID)"
//	@Success	200	{object}	RuleResponse
//	@Failure	401	{object}	Problem
//	@Failure	403	{object}	Problem	"LICENSE_RULE missing"
//	@Failure	404	{object}	Problem	"RULE_NOT_FOUND"
//	@Failure	503	{object}	Problem
//	@Router		/controller/mds/v1/license/rules/{id} [get]
//	@Router		/mds/v1/license/rules/{id} [get]
func (a *API) getRule(c *gin.Context) { a.writeRule(c, licensing.RuleLookup{ID: c.Param("id")}) }

// getRuleByAccessKey godoc
//
//	@Summary	The full licence rule with an access key
//	@Tags		licence rules
//	@Produce	json
//	@Security	BasicAuth
//	@Security	BearerAuth
//	@Param		accessKey	path		string	true	"access key"
//	@Success	200			{object}	RuleResponse
//	@Failure	401			{object}	Problem
//	@Failure	403			{object}	Problem	"LICENSE_RULE missing"
//	@Failure	404			{object}	Problem	"RULE_NOT_FOUND"
//	@Failure	503			{object}	Problem
//	@Router		/controller/mds/v1/license/rules/accessKey/{accessKey} [get]
//	@Router		/mds/v1/license/rules/accessKey/{accessKey} [get]
func (a *API) getRuleByAccessKey(c *gin.Context) {
	a.writeRule(c, licensing.RuleLookup{AccessKey: c.Param("accessKey")})
}

// getRuleByName godoc
//
//	@Summary	The full licence rule with a name
//	@Tags		licence rules
//	@Produce	json
//	@Security	BasicAuth
//	@Security	BearerAuth
//	@Param		name	path		string	true	"rule name"
//	@Success	200		{object}	RuleResponse
//	@Failure	401		{object}	Problem
//	@Failure	403		{object}	Problem	"LICENSE_RULE missing"
//	@Failure	404		{object}	Problem	"RULE_NOT_FOUND"
//	@Failure	503		{object}	Problem
//	@Router		/controller/mds/v1/license/rules/name/{name} [get]
//	@Router		/mds/v1/license/rules/name/{name} [get]
func (a *API) getRuleByName(c *gin.Context) {
	a.writeRule(c, licensing.RuleLookup{Name: c.Param("name")})
}

// ruleHistory godoc
//
//	@Summary	Every version of a licence rule, newest first
//	@Tags		licence rules
//	@Produce	json
//	@Security	BasicAuth
//	@Security	BearerAuth
//	@Param		id	path		string	true	"rule id (UUID)"
//	@Success	200	{array}		RuleVersionResponse
//	@Failure	401	{object}	Problem
//	@Failure	403	{object}	Problem	"LICENSE_RULE missing"
//	@Failure	404	{object}	Problem	"RULE_NOT_FOUND"
//	@Failure	503	{object}	Problem
//	@Router		/controller/mds/v1/license/rules/{id}/history [get]
//	@Router		/mds/v1/license/rules/{id}/history [get]
func (a *API) ruleHistory(c *gin.Context) {
	rs, err := a.lic.RuleHistory(c.Request.Context(), principal(c).AccountID, c.Param("id"))
	if err != nil {
		a.fail(c, err)
		return
	}
	out := make([]RuleVersionResponse, len(rs))
	for i, r := range rs {
		out[i] = RuleVersionResponse{RuleResponse: ruleResponse(r, false), ChangedBy: r.ChangedBy, ChangedAt: r.ChangedAt}
	}
	c.JSON(http.StatusOK, out)
}

// createRule godoc
//
//	@Summary		Create a licence rule
//	@Description	version must be 0; id (UUID) and access_key are generated when absent; account_id, when sent, must be the account's global id. total_licenses and peak_usage are computed by the server.
//	@Tags			licence rules
//	@Accept			json
//	@Produce		json
//	@Security		BasicAuth
//	@Security		BearerAuth
//	@Param			body	body		RuleRequest	true	"the rule"
//	@Success		200		{object}	RuleResponse	"created (200, as real controllers answer), with Location"
//	@Failure		400		{object}	Problem	"VALIDATION_FAILED, VERSION_MUST_BE_ZERO"
//	@Failure		401		{object}	Problem
//	@Failure		403		{object}	Problem	"LICENSE_RULE_WRITE missing"
//	@Failure		409		{object}	Problem	"NAME_TAKEN, ID_TAKEN, ACCESS_KEY_TAKEN"
//	@Failure		413		{object}	Problem
//	@Failure		415		{object}	Problem
//	@Failure		503		{object}	Problem
//	@Router			/controller/mds/v1/license/rules [post]
//	@Router			/mds/v1/license/rules [post]
func (a *API) createRule(c *gin.Context) {
	var req RuleRequest
	if !a.bindJSON(c, &req) {
		return
	}
	p := principal(c)
	in, err := req.input()
	if err != nil {
		a.fail(c, err)
		return
	}
	r, err := a.lic.CreateRule(c.Request.Context(), p.AccountID, p.String(), in)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.Header("Location", c.Request.URL.Path+"/"+r.ID)
	// 200, not 201: real controllers answer 200 and clients test for it.
	c.JSON(http.StatusOK, ruleResponse(r, false))
}

// updateRule godoc
//
//	@Summary		Replace a licence rule (optimistic concurrency)
//	@Description	Send the rule as read with GET, changed, with the version you read. If someone changed it since, the answer is 409 VERSION_CONFLICT and nothing is written; on success the version is incremented and the previous version is kept in the history. An empty access_key keeps the stored one.
//	@Tags			licence rules
//	@Accept			json
//	@Produce		json
//	@Security		BasicAuth
//	@Security		BearerAuth
//	@Param			body	body		RuleRequest	true	"the rule with id and version"
//	@Success		200		{object}	RuleResponse
//	@Failure		400		{object}	Problem	"VALIDATION_FAILED"
//	@Failure		401		{object}	Problem
//	@Failure		403		{object}	Problem	"LICENSE_RULE_WRITE missing"
//	@Failure		404		{object}	Problem	"RULE_NOT_FOUND"
//	@Failure		409		{object}	Problem	"VERSION_CONFLICT, NAME_TAKEN, ACCESS_KEY_TAKEN"
//	@Failure		413		{object}	Problem
//	@Failure		415		{object}	Problem
//	@Failure		503		{object}	Problem
//	@Router			/controller/mds/v1/license/rules [put]
//	@Router			/mds/v1/license/rules [put]
func (a *API) updateRule(c *gin.Context) {
	var req RuleRequest
	if !a.bindJSON(c, &req) {
		return
	}
	if req.Version == nil {
		a.fail(c, fault.Invalid("version", "is required: send the version you read"))
		return
	}
	p := principal(c)
	in, err := req.input()
	if err != nil {
		a.fail(c, err)
		return
	}
	r, err := a.lic.UpdateRule(c.Request.Context(), p.AccountID, p.String(), in)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, ruleResponse(r, false))
}

// deleteRule godoc
//
//	@Summary	Delete a licence rule and its history
//	@Tags		licence rules
//	@Security	BasicAuth
//	@Security	BearerAuth
//	@Param		id		path	string	true	"rule id (UUID)"
//	@Param		force	query	bool	false	"release the rule's leases"
//	@Success	204
//	@Failure	401	{object}	Problem
//	@Failure	403	{object}	Problem	"LICENSE_RULE_WRITE missing"
//	@Failure	404	{object}	Problem	"RULE_NOT_FOUND"
//	@Failure	409	{object}	Problem	"RULE_IN_USE"
//	@Failure	503	{object}	Problem
//	@Router		/controller/mds/v1/license/rules/{id} [delete]
//	@Router		/mds/v1/license/rules/{id} [delete]
func (a *API) deleteRule(c *gin.Context) {
	if err := a.lic.DeleteRule(c.Request.Context(), principal(c).AccountID, c.Param("id"), c.Query("force") == "true"); err != nil {
		a.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
