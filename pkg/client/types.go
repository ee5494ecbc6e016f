package client

import "time"

// The wire types of the API (API.md), as the service sends and accepts them.

// Account is the caller's account.
type Account struct {
	ID                int64  `json:"id"`
	Name              string `json:"name"`
	GlobalAccountName string `json:"globalAccountName"`
	Links             []Link `json:"links"`
}

// Link is a named absolute URL.
type Link struct {
	Name string `json:"name"`
	Href string `json:"href"`
}

// License is a stored licence document (Kong style: epoch-second dates).
type License struct {
	ID        string `json:"id"`
	Payload   string `json:"payload"`
	CreatedAt int64  `json:"created_at"`
	UpdatedAt int64  `json:"updated_at"`
}

// LicensePage is a page of licences; Next is the next page's URL, or nil.
type LicensePage struct {
	Data []License `json:"data"`
	Next *string   `json:"next"`
}

// Info is the account's effective licence.
type Info struct {
	AccountID           int64            `json:"accountId"`
	LicenseID           string           `json:"licenseId"`
	CustomerID          string           `json:"customerId"`
	CustomerName        string           `json:"customerName"`
	Environment         string           `json:"environment"`
	HardwareFingerprint string           `json:"hardwareFingerprint"`
	Type                string           `json:"type"`
	ExpirationDate      time.Time        `json:"expirationDate"`
	Status              string           `json:"status"` // ACTIVE, LIMITED or EXPIRED
	Packages            []Package        `json:"packages"`
	Properties          map[string]any   `json:"properties"`
	FallbackUnits       map[string]int64 `json:"fallbackUnits"`
	OverAllocated       bool             `json:"overAllocated"`
}

// Package is one licensed package or module.
type Package struct {
	PackageName    string         `json:"packageName"`
	Type           string         `json:"type"`
	Kind           string         `json:"kind"`
	Family         string         `json:"family"`
	CreatedDate    *time.Time     `json:"createdDate"`
	StartDate      *time.Time     `json:"startDate"`
	ExpirationDate *time.Time     `json:"expirationDate"`
	LicenseUnits   int64          `json:"licenseUnits"`
	Properties     map[string]any `json:"properties"`
}

// Filter types and operators of allocations.
const (
	FilterApplication = "APPLICATION"
	FilterHost        = "HOST"

	OpIDEquals   = "ID_EQUALS"
	OpEquals     = "EQUALS"
	OpStartsWith = "STARTS_WITH"
	OpEndsWith   = "ENDS_WITH"
	OpContains   = "CONTAINS"
	OpRegex      = "REGEX"
)

// Packages of vCPU-based licensing, lowest first.
const (
	PackageInfra      = "INFRA"
	PackagePremium    = "PREMIUM"
	PackageEnterprise = "ENTERPRISE"
)

// Filter admits agents by application or host.
type Filter struct {
	ID       string `json:"id,omitempty"`
	Type     string `json:"type"`
	Operator string `json:"operator"`
	Value    string `json:"value"`
}

// Limit caps one package of an allocation.
type Limit struct {
	ID      string `json:"id,omitempty"`
	Package string `json:"package"`
	Units   int64  `json:"units"`
}

// AllocationInput creates or replaces an allocation.
type AllocationInput struct {
	Name                 string   `json:"name"`
	FallbackModeDelay    bool     `json:"fallbackModeDelay"`
	MachineAgentPriority bool     `json:"machineAgentPriority"`
	Disabled             bool     `json:"disabled"`
	Filters              []Filter `json:"filters"`
	Limits               []Limit  `json:"limits"`
	Tags                 []string `json:"tags"`
}

// Allocation is a share of the licence's units (an IBL licence rule).
type Allocation struct {
	ID                   string    `json:"id"`
	AccountID            int64     `json:"accountId"`
	Name                 string    `json:"name"`
	LicenseKey           string    `json:"licenseKey"`
	FallbackModeDelay    bool      `json:"fallbackModeDelay"`
	MachineAgentPriority bool      `json:"machineAgentPriority"`
	Disabled             bool      `json:"disabled"`
	Filters              []Filter  `json:"filters"`
	Limits               []Limit   `json:"limits"`
	Tags                 []string  `json:"tags"`
	CreatedDate          time.Time `json:"createdDate"`
	LastUpdatedDate      time.Time `json:"lastUpdatedDate"`
}

// Input is the allocation as an input, to change and send back with
// UpdateAllocation.
func (a Allocation) Input() AllocationInput {
	return AllocationInput{Name: a.Name, FallbackModeDelay: a.FallbackModeDelay, MachineAgentPriority: a.MachineAgentPriority,
		Disabled: a.Disabled, Filters: a.Filters, Limits: a.Limits, Tags: a.Tags}
}

// AllocationQuery filters ListAllocations: at most one field.
type AllocationQuery struct {
	Name, LicenseKey, Tag string
}

// Entity types of licence-rule constraints.
const (
	ApplicationEntity = "com.appdynamics.modules.apm.topology.impl.persistenceapi.model.ApplicationEntity"
	MachineEntity     = "com.appdynamics.modules.apm.topology.impl.persistenceapi.model.MachineEntity"
)

// Constraint limits a licence rule to some applications or hosts.
type Constraint struct {
	EntityTypeID    string           `json:"entity_type_id"`
	ConstraintType  string           `json:"constraint_type"` // ALLOW_ALL or ALLOW_SELECTED
	MatchConditions []MatchCondition `json:"match_conditions"`
}

// MatchCondition is one condition of an ALLOW_SELECTED constraint.
type MatchCondition struct {
	MatchType     string `json:"match_type"`
	AttributeType string `json:"attribute_type"` // NAME or ID
	MatchString   string `json:"match_string"`
}

// Entitlement is a number of licences of one agent module.
type Entitlement struct {
	LicenseModuleType string `json:"license_module_type"`
	NumberOfLicenses  int64  `json:"number_of_licenses"`
}

// Rule is a versioned licence rule (agent-based licensing). To change
// one, read it, change it and send it back with UpdateRule: the version
// read is checked. Enabled is sent as it is: set it to true to create a
// rule that admits agents (false creates a disabled one).
type Rule struct {
	ID            string        `json:"id,omitempty"`
	Version       int64         `json:"version"`
	Name          string        `json:"name"`
	Description   *string       `json:"description,omitempty"`
	Enabled       bool          `json:"enabled"`
	Constraints   []Constraint  `json:"constraints"`
	Entitlements  []Entitlement `json:"entitlements"`
	AccountID     string        `json:"account_id,omitempty"`
	AccessKey     string        `json:"access_key,omitempty"`
	TotalLicenses int64         `json:"total_licenses"`
	PeakUsage     *int64        `json:"peak_usage"`
}

// RuleVersion is one stored version of a rule.
type RuleVersion struct {
	Rule
	ChangedBy string    `json:"changed_by"`
	ChangedAt time.Time `json:"changed_at"`
}

// Host is the host an agent runs on; VCPU nil means unknown.
type Host struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	VCPU *int64 `json:"vCpu"`
}

// Application is the application an agent monitors.
type Application struct {
	ID   *int64  `json:"id,omitempty"`
	Name *string `json:"name,omitempty"`
}

// Registration asks for a licence lease for one agent; AgentID makes it
// idempotent.
type Registration struct {
	AgentID      string       `json:"agentId"`
	AgentType    string       `json:"agentType"`
	AgentVersion string       `json:"agentVersion,omitempty"`
	LicenseKey   string       `json:"licenseKey,omitempty"`
	Host         Host         `json:"host"`
	Application  *Application `json:"application,omitempty"`
	Node         string       `json:"node,omitempty"`
	Tier         string       `json:"tier,omitempty"`
	ContainerID  string       `json:"containerId,omitempty"`
}

// Pool names the allocation or rule of a decision.
type Pool struct {
	Kind string `json:"kind"` // ALLOCATION or RULE
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Explanation says why a decision was taken.
type Explanation struct {
	MatchedFilters       []string `json:"matchedFilters"`
	UnitsAvailableBefore int64    `json:"unitsAvailableBefore"`
	Limit                int64    `json:"limit"`
	Reason               *string  `json:"reason"`
}

// Decision is the engine's answer to a registration, granted or not (a
// refusal's *Error carries it).
type Decision struct {
	RegistrationID string      `json:"registrationId"`
	Status         string      `json:"status"` // LICENSED or REFUSED
	Pool           Pool        `json:"pool"`
	Package        string      `json:"package"`
	UnitsCharged   int64       `json:"unitsCharged"`
	HostUnits      int64       `json:"hostUnits"`
	LeaseExpiresAt *time.Time  `json:"leaseExpiresAt"`
	Explanation    Explanation `json:"explanation"`
	DryRun         bool        `json:"dryRun,omitempty"`
	// Existing is true when the agent already held this lease (200).
	Existing bool `json:"-"`
}

// Heartbeat is a renewed lease.
type Heartbeat struct {
	RegistrationID string    `json:"registrationId"`
	LeaseExpiresAt time.Time `json:"leaseExpiresAt"`
	Package        string    `json:"package"`
	HostUnits      int64     `json:"hostUnits"`
	// VCPUApplied is set when the heartbeat reported a vCPU: false when the
	// host kept its old charge, with the Reason.
	VCPUApplied *bool  `json:"vCpuApplied,omitempty"`
	Reason      string `json:"reason,omitempty"`
}

// BatchHeartbeat says what became of each id of a batch.
type BatchHeartbeat struct {
	Renewed int       `json:"renewed"`
	Unknown []string  `json:"unknown"`
	Revoked []Revoked `json:"revoked"`
}

// Revoked is a lease that was revoked (PREEMPTED, ALLOCATION_DELETED, …).
type Revoked struct {
	ID   string `json:"id"`
	Code string `json:"code"`
}

// Lease is a live lease.
type Lease struct {
	RegistrationID  string       `json:"registrationId"`
	AgentID         string       `json:"agentId"`
	AgentType       string       `json:"agentType"`
	AgentVersion    *string      `json:"agentVersion"`
	LicenseKey      string       `json:"licenseKey"`
	Pool            Pool         `json:"pool"`
	Package         string       `json:"package"`
	UnitsCharged    int64        `json:"unitsCharged"`
	Host            Host         `json:"host"`
	Application     *Application `json:"application"`
	Node            *string      `json:"node"`
	Tier            *string      `json:"tier"`
	ContainerID     *string      `json:"containerId"`
	GrantedAt       time.Time    `json:"grantedAt"`
	LastHeartbeatAt time.Time    `json:"lastHeartbeatAt"`
	LeaseExpiresAt  time.Time    `json:"leaseExpiresAt"`
}

// LeasePage is a page of leases; Next is the next page's URL, or nil.
type LeasePage struct {
	Data []Lease `json:"data"`
	Next *string `json:"next"`
}

// LeaseQuery filters and pages ListLeases.
type LeaseQuery struct {
	Host, AgentType, LicenseKey string
	AppID                       *int64
	// Size is the page size (default 100, at most 1000); Offset skips.
	Size, Offset int
}

// Node is a node name.
type Node struct {
	NodeName string `json:"nodeName"`
}

// Container is a container id.
type Container struct {
	ContainerID string `json:"containerId"`
}

// Agent is one kind of licensed agent.
type Agent struct {
	Type       string  `json:"type"`
	Version    *string `json:"version"`
	LicenseKey string  `json:"licenseKey"`
}

// AppUsage is the grouped usage of applications.
type AppUsage struct {
	VCPUTotal            int64               `json:"vCpuTotal"`
	FallbackLicenseUnits map[string]int64    `json:"fallbackLicenseUnits,omitempty"`
	Items                map[string]*AppItem `json:"items"`
}

// AppItem is one application's usage.
type AppItem struct {
	VCPU       int64       `json:"vCpu"`
	Nodes      []Node      `json:"nodes"`
	Containers []Container `json:"containers"`
	Agents     []Agent     `json:"agents,omitempty"`
	AppID      int64       `json:"appId"`
	AppName    string      `json:"appName"`
	Hosts      *HostUsage  `json:"hosts,omitempty"`
}

// HostUsage is the grouped usage of hosts.
type HostUsage struct {
	VCPUTotal            int64                `json:"vCpuTotal"`
	FallbackLicenseUnits map[string]int64     `json:"fallbackLicenseUnits,omitempty"`
	Items                map[string]*HostItem `json:"items"`
}

// HostItem is one host's usage.
type HostItem struct {
	VCPU                 int64            `json:"vCpu"`
	Nodes                []Node           `json:"nodes"`
	Containers           []Container      `json:"containers"`
	Agents               []Agent          `json:"agents,omitempty"`
	Host                 string           `json:"host"`
	FallbackLicenseUnits map[string]int64 `json:"fallbackLicenseUnits"`
	SharedByAllocations  bool             `json:"sharedByAllocations,omitempty"`
	Applications         *AppUsage        `json:"applications,omitempty"`
}

// SeriesQuery selects a usage time series. Zero values take the service's
// defaults (the last 24 h, 60- or 1440-minute buckets).
type SeriesQuery struct {
	From, To           time.Time
	GranularityMinutes int
	// IncludeEntityTypes adds registered agents per type.
	IncludeEntityTypes bool
	// IncludeConsumptionBased adds unit-hours (UNIT_HOURS).
	IncludeConsumptionBased bool
	// LicenseKey selects one allocation's series (default: the account's).
	LicenseKey string
	// LicenseID selects a licence's series (default: the account's).
	LicenseID string
}

// Series is a usage time series.
type Series struct {
	AccountID   int64           `json:"accountId"`
	LicenseRule *LicenseRuleRef `json:"licenseRule"`
	Packages    []PackageSeries `json:"packages"`
}

// LicenseRuleRef names the allocation of an allocation series.
type LicenseRuleRef struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	LicenseKey string `json:"licenseKey"`
}

// PackageSeries is one package's usage.
type PackageSeries struct {
	Name       string      `json:"name"`
	UnitUsages []UnitUsage `json:"unitUsages"`
}

// UnitUsage is one usage type's points, ascending.
type UnitUsage struct {
	UsageType            string  `json:"usageType"` // LICENSE_UNIT or UNIT_HOURS
	GranularityInMinutes int     `json:"granularityInMinutes"`
	Data                 []Point `json:"data"`
}

// Point is one bucket of a series.
type Point struct {
	Timestamp     time.Time            `json:"timestamp"`
	Provisioned   Stat                 `json:"provisioned"`
	Used          Stat                 `json:"used"`
	Registrations []SeriesRegistration `json:"registrations,omitempty"`
}

// Stat summarises the samples of a bucket.
type Stat struct {
	Min   float64 `json:"min"`
	Max   float64 `json:"max"`
	Avg   float64 `json:"avg"`
	Count int64   `json:"count"`
}

// SeriesRegistration is one agent type's registered agents in a bucket.
type SeriesRegistration struct {
	Type       string `json:"type"`
	EntityType string `json:"entityType"`
	Registered Stat   `json:"registered"`
}

// AnalyticsQuery is an analytics window: From inclusive, To exclusive
// (zero: the oldest event, now); Pool (an allocation or rule id or key) or
// Tag filter.
type AnalyticsQuery struct {
	From, To  time.Time
	Pool, Tag string
}

// AgentUsage is one agent type's usage in a window.
type AgentUsage struct {
	AgentType                          string         `json:"agentType"`
	MaxConcurrentLicenseCount          int            `json:"maxConcurrentLicenseCount"`
	MaxConcurrentLicenseTime           *time.Time     `json:"maxConcurrentLicenseTime"`
	PackagesAtMaxConcurrentLicenseTime []PackageCount `json:"packagesAtMaxConcurrentLicenseTime"`
	UniqueHostCount                    int            `json:"uniqueHostCount"`
	UniqueApplicationCount             int            `json:"uniqueApplicationCount"`
	UsageHours                         float64        `json:"usageHours"`
}

// PackageCount is a number of leases in a package.
type PackageCount struct {
	Package string `json:"package"`
	Count   int    `json:"count"`
}

// AgentPackages is the packages one agent type used.
type AgentPackages struct {
	AgentType string   `json:"agentType"`
	Packages  []string `json:"packages"`
}

// LeaseUsage is one agent type and version's usage on a host for an
// application.
type LeaseUsage struct {
	AgentType    string       `json:"agentType"`
	AgentVersion string       `json:"agentVersion"`
	Packages     []string     `json:"packages"`
	UsageHours   float64      `json:"usageHours"`
	Host         HostRef      `json:"host"`
	Application  *Application `json:"application"`
}

// HostRef is a host by id and name.
type HostRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Rejections is every refusal of a window, by reason.
type Rejections struct {
	NoMoreUnits        []RejectionGroup `json:"noMoreUnits"`
	PackageNotLicensed []RejectionGroup `json:"packageNotLicensed"`
	DeniedByFilter     []RejectionGroup `json:"deniedByFilter"`
	Other              []RejectionGroup `json:"other"`
}

// RejectionGroup is the refusals of one request key.
type RejectionGroup struct {
	RequestKey struct {
		AgentType        string `json:"agentType"`
		AgentVersion     string `json:"agentVersion"`
		RequestedPackage string `json:"requestedPackage"`
		Pool             string `json:"pool"`
	} `json:"requestKey"`
	ResponseStatistics struct {
		Count     int `json:"count"`
		HostCount int `json:"hostCount"`
		Hosts     []struct {
			Host        string      `json:"host"`
			Application *string     `json:"application"`
			Count       int         `json:"count"`
			Times       []time.Time `json:"times"`
		} `json:"hosts"`
	} `json:"responseStatistics"`
}

// InventoryApplication is an application of the AppDynamics inventory.
type InventoryApplication struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

// InventoryTier is a tier of an application.
type InventoryTier struct {
	ID            int64  `json:"id"`
	Name          string `json:"name"`
	Type          string `json:"type"`
	AgentType     string `json:"agentType"`
	NumberOfNodes int    `json:"numberOfNodes"`
}

// InventoryNode is a node of an application.
type InventoryNode struct {
	ID                  int64    `json:"id"`
	Name                string   `json:"name"`
	Type                string   `json:"type"`
	TierID              int64    `json:"tierId"`
	TierName            string   `json:"tierName"`
	MachineID           int64    `json:"machineId"`
	MachineName         string   `json:"machineName"`
	MachineOSType       string   `json:"machineOSType"`
	MachineAgentPresent bool     `json:"machineAgentPresent"`
	MachineAgentVersion string   `json:"machineAgentVersion"`
	AppAgentPresent     bool     `json:"appAgentPresent"`
	AppAgentVersion     string   `json:"appAgentVersion"`
	AgentType           string   `json:"agentType"`
	NodeUniqueLocalID   string   `json:"nodeUniqueLocalId"`
	IPAddresses         []string `json:"ipAddresses"`
}

// Roles of users and API clients.
const (
	RoleAccountOwner   = "account-owner"
	RoleLicenseAdmin   = "license-admin"
	RoleLicenseViewer  = "license-viewer"
	RoleAgentRegistrar = "agent-registrar"
)

// User is a basic-auth user of the account.
type User struct {
	Name            string    `json:"name"`
	Role            string    `json:"role"`
	Permissions     []string  `json:"permissions"`
	CreatedDate     time.Time `json:"createdDate"`
	LastUpdatedDate time.Time `json:"lastUpdatedDate"`
}

// APIClient is an OAuth API client of the account. Secret is set only in
// the answer of CreateAPIClient.
type APIClient struct {
	Name                 string    `json:"name"`
	ClientID             string    `json:"clientId"`
	Description          string    `json:"description"`
	Role                 string    `json:"role"`
	TokenLifetimeSeconds int64     `json:"tokenLifetimeSeconds"`
	CreatedDate          time.Time `json:"createdDate"`
	Secret               string    `json:"secret,omitempty"`
}

// APIClientInput creates an API client; TokenLifetimeSeconds 0 is the
// default (300).
type APIClientInput struct {
	Name                 string `json:"name"`
	Description          string `json:"description,omitempty"`
	Role                 string `json:"role"`
	TokenLifetimeSeconds int64  `json:"tokenLifetimeSeconds,omitempty"`
}
