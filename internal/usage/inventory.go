package usage

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"

	"github.com/lcorp/licensing-controller/internal/engine"
	"github.com/lcorp/licensing-controller/internal/fault"
)

// The AppDynamics inventory (API.md §9): applications, their tiers and
// nodes, built from the applications the engine has seen and the live
// leases.

// Node is one node of an application: the agents that registered with one
// node name (or, without one, one agent).
type Node struct {
	ID                  int64
	Name                string
	Type                string
	TierID              int64
	TierName            string
	MachineID           int64
	MachineName         string
	MachineAgentPresent bool
	MachineAgentVersion string
	AppAgentPresent     bool
	AppAgentVersion     string
	AgentType           string
	UniqueLocalID       string
}

// Tier is a tier of an application with its nodes.
type Tier struct {
	ID            int64
	Name          string
	Type          string
	AgentType     string
	NumberOfNodes int
}

// DefaultTier names the tier of agents that registered without one.
const DefaultTier = "Default"

// LeaseLister is what the inventory reads of the live leases.
type LeaseLister interface {
	Leases(ctx context.Context, q engine.LeaseQuery) ([]engine.LeaseInfo, error)
}

// stableID is an id that stays the same across calls and restarts: a hash
// of what names the object, kept below 2^53 so JavaScript reads it exactly.
func stableID(parts ...string) int64 {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return int64(h.Sum64()&(1<<53-1)) | 1
}

// nodeTypes are the AppDynamics node types of the agent types.
var nodeTypes = map[string]string{
	"APP_AGENT": "Java", "DOT_NET_APP_AGENT": ".NET", "PHP_APP_AGENT": "PHP", "NODEJS_APP_AGENT": "Node.js",
	"PYTHON_APP_AGENT": "Python", "GOLANG_SDK": "Go", "NATIVE_SDK": "Native", "NATIVE_WEB_SERVER": "Web Server",
	"DB_AGENT": "Database", "MACHINE_AGENT": "Machine", "SIM_MACHINE_AGENT": "Machine", "NETVIZ_AGENT": "Network",
}

func nodeType(agentType string) string {
	if t, ok := nodeTypes[agentType]; ok {
		return t
	}
	return "Other"
}

// Application finds one of the account's applications by id (digits) or
// name. Errors: ErrNotFound (APPLICATION_NOT_FOUND).
func (s *Service) Application(ctx context.Context, accountID int64, idOrName string) (engine.Application, error) {
	apps, err := s.Applications(ctx, accountID)
	if err != nil {
		return engine.Application{}, err
	}
	id, idErr := strconv.ParseInt(idOrName, 10, 64)
	for _, a := range apps {
		if (idErr == nil && a.ID == id) || a.Name == idOrName {
			return a, nil
		}
	}
	return engine.Application{}, fault.New(fault.ErrNotFound, "APPLICATION_NOT_FOUND", "application %q not found", idOrName)
}

// allLeases pages through the live leases of q.
func allLeases(ctx context.Context, l LeaseLister, q engine.LeaseQuery) ([]engine.LeaseInfo, error) {
	var out []engine.LeaseInfo
	for q.Offset = 0; ; q.Offset += engine.MaxLeasePage {
		q.Limit = engine.MaxLeasePage
		page, err := l.Leases(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("read live leases: %w", err)
		}
		out = append(out, page...)
		if len(page) < engine.MaxLeasePage {
			return out, nil
		}
	}
}

// Nodes lists the nodes of an application from the live leases, ordered
// by tier and name. Errors: ErrNotFound (APPLICATION_NOT_FOUND).
func (s *Service) Nodes(ctx context.Context, l LeaseLister, accountID int64, idOrName string) ([]Node, error) {
	app, err := s.Application(ctx, accountID, idOrName)
	if err != nil {
		return nil, err
	}
	leases, err := allLeases(ctx, l, engine.LeaseQuery{AccountID: accountID, AppID: &app.ID})
	if err != nil {
		return nil, err
	}
	machines, err := allLeases(ctx, l, engine.LeaseQuery{AccountID: accountID, AgentType: "MACHINE_AGENT"})
	if err != nil {
		return nil, err
	}
	machineAgent := map[string]string{} // host id -> version
	for _, m := range machines {
		machineAgent[m.HostID] = deref(m.AgentVersion)
	}
	byName := map[string]*Node{}
	for _, le := range leases {
		name := deref(le.Node)
		if name == "" {
			name = le.AgentID
		}
		tier := deref(le.Tier)
		if tier == "" {
			tier = DefaultTier
		}
		appID := strconv.FormatInt(app.ID, 10)
		n, ok := byName[name]
		if !ok {
			n = &Node{ID: stableID("node", strconv.FormatInt(accountID, 10), appID, name), Name: name,
				Type: nodeType(le.AgentType), TierID: stableID("tier", strconv.FormatInt(accountID, 10), appID, tier), TierName: tier,
				MachineID: stableID("machine", strconv.FormatInt(accountID, 10), le.HostID), MachineName: le.HostName,
				AgentType: le.AgentType, UniqueLocalID: deref(le.ContainerID)}
			byName[name] = n
		}
		if le.AgentType != "MACHINE_AGENT" && le.AgentType != "SIM_MACHINE_AGENT" && le.AgentType != "NETVIZ_AGENT" {
			n.AppAgentPresent, n.AppAgentVersion = true, deref(le.AgentVersion)
		}
		if v, ok := machineAgent[le.HostID]; ok {
			n.MachineAgentPresent, n.MachineAgentVersion = true, v
		}
	}
	out := make([]Node, 0, len(byName))
	for _, n := range byName {
		out = append(out, *n)
	}
	slices.SortFunc(out, func(a, b Node) int { return cmp.Or(cmp.Compare(a.TierName, b.TierName), cmp.Compare(a.Name, b.Name)) })
	return out, nil
}

// Tiers lists the tiers of an application with their node counts.
// Errors: ErrNotFound (APPLICATION_NOT_FOUND).
func (s *Service) Tiers(ctx context.Context, l LeaseLister, accountID int64, idOrName string) ([]Tier, error) {
	nodes, err := s.Nodes(ctx, l, accountID, idOrName)
	if err != nil {
		return nil, err
	}
	var out []Tier
	for _, n := range nodes { // ordered by tier
		if len(out) == 0 || out[len(out)-1].ID != n.TierID {
			out = append(out, Tier{ID: n.TierID, Name: n.TierName, Type: "Application Server", AgentType: n.AgentType})
		}
		out[len(out)-1].NumberOfNodes++
	}
	return out, nil
}
