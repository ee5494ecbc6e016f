package httpapi

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/lcorp/licensing-controller/internal/usage"
)

// InventoryNodeDTO is a node as AppDynamics' REST inventory lists it.
type InventoryNodeDTO struct {
	ID                  int64    `json:"id" example:"4711"`
	Name                string   `json:"name" example:"OrderFulfillmentServiceNode"`
	Type                string   `json:"type" example:"Java"`
	TierID              int64    `json:"tierId" example:"815"`
	TierName            string   `json:"tierName" example:"OrderFulfillmentService"`
	MachineID           int64    `json:"machineId" example:"42"`
	MachineName         string   `json:"machineName" example:"ip-10-117-85-124"`
	MachineOSType       string   `json:"machineOSType" example:"Unknown"`
	MachineAgentPresent bool     `json:"machineAgentPresent"`
	MachineAgentVersion string   `json:"machineAgentVersion" example:""`
	AppAgentPresent     bool     `json:"appAgentPresent" example:"true"`
	AppAgentVersion     string   `json:"appAgentVersion" example:"24.7.0"`
	AgentType           string   `json:"agentType" example:"APP_AGENT"`
	NodeUniqueLocalID   string   `json:"nodeUniqueLocalId" example:""`
	IPAddresses         []string `json:"ipAddresses"`
}

// TierDTO is a tier as AppDynamics' REST inventory lists it.
type TierDTO struct {
	ID            int64  `json:"id" example:"815"`
	Name          string `json:"name" example:"OrderFulfillmentService"`
	Type          string `json:"type" example:"Application Server"`
	AgentType     string `json:"agentType" example:"APP_AGENT"`
	NumberOfNodes int    `json:"numberOfNodes" example:"2"`
}

// AccountApplicationsDTO is the applications of an account (the account API).
type AccountApplicationsDTO struct {
	Applications []ApplicationDescDTO `json:"applications"`
	Links        []Link               `json:"links"`
}

// NodeRefDTO is a node as the account API lists it.
type NodeRefDTO struct {
	ID   int64  `json:"id" example:"4711"`
	Name string `json:"name" example:"OrderFulfillmentServiceNode"`
	Type string `json:"type" example:"Java"`
}

// AccountNodesDTO is the nodes of an application (the account API).
type AccountNodesDTO struct {
	Nodes []NodeRefDTO `json:"nodes"`
}

// application godoc
//
//	@Summary	One application, as a one-element list (AppDynamics REST)
//	@Tags		inventory
//	@Produce	json
//	@Security	BasicAuth
//	@Security	BearerAuth
//	@Param		idOrName	path		string	true	"application id or name"
//	@Param		output		query		string	false	"JSON (accepted and ignored)"
//	@Success	200			{array}		ApplicationDescDTO
//	@Failure	401			{object}	Problem
//	@Failure	403			{object}	Problem	"ACCOUNT_LICENSE missing"
//	@Failure	404			{object}	Problem	"APPLICATION_NOT_FOUND"
//	@Failure	503			{object}	Problem
//	@Router		/controller/rest/applications/{idOrName} [get]
func (a *API) application(c *gin.Context) {
	app, err := a.usage.Application(c.Request.Context(), principal(c).AccountID, c.Param("idOrName"))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, []ApplicationDescDTO{{ID: app.ID, Name: app.Name}})
}

// applicationNodes godoc
//
//	@Summary		The nodes of an application (AppDynamics REST), from the live leases
//	@Description	Node, tier and machine ids are stable integers, the same across calls and restarts. Agents without a node name are one node each (named by agentId); without a tier they are in the tier "Default".
//	@Tags			inventory
//	@Produce		json
//	@Security		BasicAuth
//	@Security		BearerAuth
//	@Param			idOrName	path		string	true	"application id or name"
//	@Param			output		query		string	false	"JSON (accepted and ignored)"
//	@Success		200			{array}		InventoryNodeDTO
//	@Failure		401			{object}	Problem
//	@Failure		403			{object}	Problem	"ACCOUNT_LICENSE missing"
//	@Failure		404			{object}	Problem	"APPLICATION_NOT_FOUND"
//	@Failure		503			{object}	Problem
//	@Router			/controller/rest/applications/{idOrName}/nodes [get]
func (a *API) applicationNodes(c *gin.Context) {
	nodes, err := a.usage.Nodes(c.Request.Context(), a.eng, principal(c).AccountID, c.Param("idOrName"))
	if err != nil {
		a.fail(c, err)
		return
	}
	out := make([]InventoryNodeDTO, len(nodes))
	for i, n := range nodes {
		out[i] = inventoryNode(n)
	}
	c.JSON(http.StatusOK, out)
}

func inventoryNode(n usage.Node) InventoryNodeDTO {
	return InventoryNodeDTO{ID: n.ID, Name: n.Name, Type: n.Type, TierID: n.TierID, TierName: n.TierName,
		MachineID: n.MachineID, MachineName: n.MachineName, MachineOSType: "Unknown",
		MachineAgentPresent: n.MachineAgentPresent, MachineAgentVersion: n.MachineAgentVersion,
		AppAgentPresent: n.AppAgentPresent, AppAgentVersion: n.AppAgentVersion, AgentType: n.AgentType,
		NodeUniqueLocalID: n.UniqueLocalID}
}

// applicationTiers godoc
//
//	@Summary	The tiers of an application (AppDynamics REST), from the live leases
//	@Tags		inventory
//	@Produce	json
//	@Security	BasicAuth
//	@Security	BearerAuth
//	@Param		idOrName	path		string	true	"application id or name"
//	@Param		output		query		string	false	"JSON (accepted and ignored)"
//	@Success	200			{array}		TierDTO
//	@Failure	401			{object}	Problem
//	@Failure	403			{object}	Problem	"ACCOUNT_LICENSE missing"
//	@Failure	404			{object}	Problem	"APPLICATION_NOT_FOUND"
//	@Failure	503			{object}	Problem
//	@Router		/controller/rest/applications/{idOrName}/tiers [get]
func (a *API) applicationTiers(c *gin.Context) {
	tiers, err := a.usage.Tiers(c.Request.Context(), a.eng, principal(c).AccountID, c.Param("idOrName"))
	if err != nil {
		a.fail(c, err)
		return
	}
	out := make([]TierDTO, len(tiers))
	for i, t := range tiers {
		out[i] = TierDTO(t)
	}
	c.JSON(http.StatusOK, out)
}

// accountApplications godoc
//
//	@Summary	The account's applications (the account API)
//	@Tags		inventory
//	@Produce	json
//	@Security	BasicAuth
//	@Security	BearerAuth
//	@Param		accountId	path		int	true	"account id"
//	@Success	200			{object}	AccountApplicationsDTO
//	@Failure	401			{object}	Problem
//	@Failure	403			{object}	Problem	"ACCOUNT_LICENSE missing"
//	@Failure	404			{object}	Problem	"ACCOUNT_NOT_FOUND"
//	@Failure	503			{object}	Problem
//	@Router		/controller/api/accounts/{accountId}/applications [get]
func (a *API) accountApplications(c *gin.Context) {
	apps, err := a.usage.Applications(c.Request.Context(), principal(c).AccountID)
	if err != nil {
		a.fail(c, err)
		return
	}
	out := AccountApplicationsDTO{Applications: make([]ApplicationDescDTO, len(apps)), Links: []Link{}}
	base := a.baseURL(c) + "/controller/api/accounts/" + strconv.FormatInt(principal(c).AccountID, 10) + "/applications/"
	for i, ap := range apps {
		out.Applications[i] = ApplicationDescDTO{ID: ap.ID, Name: ap.Name}
		out.Links = append(out.Links, Link{Name: strconv.FormatInt(ap.ID, 10), Href: base + strconv.FormatInt(ap.ID, 10)})
	}
	c.JSON(http.StatusOK, out)
}

// accountApplicationNodes godoc
//
//	@Summary	The nodes of an application (the account API)
//	@Tags		inventory
//	@Produce	json
//	@Security	BasicAuth
//	@Security	BearerAuth
//	@Param		accountId	path		int	true	"account id"
//	@Param		appId		path		int	true	"application id"
//	@Success	200			{object}	AccountNodesDTO
//	@Failure	401			{object}	Problem
//	@Failure	403			{object}	Problem	"ACCOUNT_LICENSE missing"
//	@Failure	404			{object}	Problem	"ACCOUNT_NOT_FOUND, APPLICATION_NOT_FOUND"
//	@Failure	503			{object}	Problem
//	@Router		/controller/api/accounts/{accountId}/applications/{appId}/nodes [get]
func (a *API) accountApplicationNodes(c *gin.Context) {
	nodes, err := a.usage.Nodes(c.Request.Context(), a.eng, principal(c).AccountID, c.Param("appId"))
	if err != nil {
		a.fail(c, err)
		return
	}
	out := AccountNodesDTO{Nodes: make([]NodeRefDTO, len(nodes))}
	for i, n := range nodes {
		out.Nodes[i] = NodeRefDTO{ID: n.ID, Name: n.Name, Type: n.Type}
	}
	c.JSON(http.StatusOK, out)
}
