package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// MyAccount returns the caller's account.
func (c *Client) MyAccount(ctx context.Context) (*Account, error) {
	var out Account
	_, err := c.do(ctx, call{method: http.MethodGet, path: "/controller/api/accounts/myaccount", retry: true}, &out)
	return &out, err
}

// Info returns the account's effective licence and its status.
func (c *Client) Info(ctx context.Context) (*Info, error) {
	var out Info
	_, err := c.do(ctx, call{method: http.MethodGet, path: c.licensing("/info"), retry: true}, &out)
	return &out, err
}

// ListLicenses returns a page of the account's licence documents (size 0:
// the service's default).
func (c *Client) ListLicenses(ctx context.Context, size, offset int) (*LicensePage, error) {
	var out LicensePage
	_, err := c.do(ctx, call{method: http.MethodGet, path: c.licensing("/licenses"), query: page(size, offset), retry: true}, &out)
	return &out, err
}

// GetLicense returns one licence document.
func (c *Client) GetLicense(ctx context.Context, id string) (*License, error) {
	var out License
	_, err := c.do(ctx, call{method: http.MethodGet, path: c.licensing("/licenses/%s", url.PathEscape(id)), retry: true}, &out)
	return &out, err
}

// AddLicense stores a signed licence document (its JSON text).
func (c *Client) AddLicense(ctx context.Context, document string) (*License, error) {
	var out License
	_, err := c.do(ctx, call{method: http.MethodPost, path: c.licensing("/licenses"), body: map[string]string{"payload": document}}, &out)
	return &out, err
}

// PutLicense stores a signed licence document under id (a UUID), creating
// or replacing it.
func (c *Client) PutLicense(ctx context.Context, id, document string) (*License, error) {
	var out License
	_, err := c.do(ctx, call{method: http.MethodPut, path: c.licensing("/licenses/%s", url.PathEscape(id)),
		body: map[string]string{"payload": document}, retry: true}, &out)
	return &out, err
}

// DeleteLicense deletes a licence document.
func (c *Client) DeleteLicense(ctx context.Context, id string) error {
	_, err := c.do(ctx, call{method: http.MethodDelete, path: c.licensing("/licenses/%s", url.PathEscape(id)), retry: true}, nil)
	return err
}

// ListAllocations lists the account's allocations, the Default included.
func (c *Client) ListAllocations(ctx context.Context, q AllocationQuery) ([]Allocation, error) {
	v := url.Values{}
	set(v, "name", q.Name)
	set(v, "license-key", q.LicenseKey)
	set(v, "tag", q.Tag)
	var out []Allocation
	_, err := c.do(ctx, call{method: http.MethodGet, path: c.licensing("/allocation"), query: v, retry: true}, &out)
	return out, err
}

// GetAllocation returns one allocation.
func (c *Client) GetAllocation(ctx context.Context, id string) (*Allocation, error) {
	var out Allocation
	_, err := c.do(ctx, call{method: http.MethodGet, path: c.licensing("/allocation/%s", url.PathEscape(id)), retry: true}, &out)
	return &out, err
}

// CreateAllocation creates an allocation. It is not retried: a retry after
// a lost answer could meet NAME_TAKEN.
func (c *Client) CreateAllocation(ctx context.Context, in AllocationInput) (*Allocation, error) {
	var out Allocation
	_, err := c.do(ctx, call{method: http.MethodPost, path: c.licensing("/allocation"), body: nonNil(in)}, &out)
	return &out, err
}

// UpdateAllocation replaces an allocation's name, filters, limits, tags
// and flags.
func (c *Client) UpdateAllocation(ctx context.Context, id string, in AllocationInput) (*Allocation, error) {
	var out Allocation
	_, err := c.do(ctx, call{method: http.MethodPut, path: c.licensing("/allocation/%s", url.PathEscape(id)), body: nonNil(in), retry: true}, &out)
	return &out, err
}

// DeleteAllocation deletes an allocation; force releases its leases
// (otherwise an allocation holding leases is a 409 ALLOCATION_IN_USE).
func (c *Client) DeleteAllocation(ctx context.Context, id string, force bool) error {
	v := url.Values{}
	if force {
		v.Set("force", "true")
	}
	_, err := c.do(ctx, call{method: http.MethodDelete, path: c.licensing("/allocation/%s", url.PathEscape(id)), query: v, retry: true}, nil)
	return err
}

func nonNil(in AllocationInput) AllocationInput {
	if in.Filters == nil {
		in.Filters = []Filter{}
	}
	if in.Limits == nil {
		in.Limits = []Limit{}
	}
	if in.Tags == nil {
		in.Tags = []string{}
	}
	return in
}

const rules = "/controller/mds/v1/license/rules"

// ListRules lists summaries of the account's licence rules (constraints and
// entitlements empty, as the AppDynamics API answers).
func (c *Client) ListRules(ctx context.Context) ([]Rule, error) {
	var out []Rule
	_, err := c.do(ctx, call{method: http.MethodGet, path: rules, retry: true}, &out)
	return out, err
}

// GetRule returns a full licence rule by id.
func (c *Client) GetRule(ctx context.Context, id string) (*Rule, error) {
	var out Rule
	_, err := c.do(ctx, call{method: http.MethodGet, path: rules + "/" + url.PathEscape(id), retry: true}, &out)
	return &out, err
}

// GetRuleByName returns a full licence rule by name.
func (c *Client) GetRuleByName(ctx context.Context, name string) (*Rule, error) {
	var out Rule
	_, err := c.do(ctx, call{method: http.MethodGet, path: rules + "/name/" + url.PathEscape(name), retry: true}, &out)
	return &out, err
}

// GetRuleByAccessKey returns a full licence rule by its access key.
func (c *Client) GetRuleByAccessKey(ctx context.Context, key string) (*Rule, error) {
	var out Rule
	_, err := c.do(ctx, call{method: http.MethodGet, path: rules + "/accessKey/" + url.PathEscape(key), retry: true}, &out)
	return &out, err
}

// CreateRule creates a licence rule (Version must be 0; ID and AccessKey
// are generated when empty).
func (c *Client) CreateRule(ctx context.Context, r Rule) (*Rule, error) {
	var out Rule
	_, err := c.do(ctx, call{method: http.MethodPost, path: rules, body: ruleBody(r)}, &out)
	return &out, err
}

// UpdateRule replaces a rule; r.Version must be the version read (else
// ErrVersionConflict). The answer carries the new version.
func (c *Client) UpdateRule(ctx context.Context, r Rule) (*Rule, error) {
	var out Rule
	// Not retried: a retry after a lost answer meets VERSION_CONFLICT.
	_, err := c.do(ctx, call{method: http.MethodPut, path: rules, body: ruleBody(r)}, &out)
	return &out, err
}

// DeleteRule deletes a rule; force releases its leases.
func (c *Client) DeleteRule(ctx context.Context, id string, force bool) error {
	v := url.Values{}
	if force {
		v.Set("force", "true")
	}
	_, err := c.do(ctx, call{method: http.MethodDelete, path: rules + "/" + url.PathEscape(id), query: v, retry: true}, nil)
	return err
}

// RuleHistory returns every stored version of a rule, newest first.
func (c *Client) RuleHistory(ctx context.Context, id string) ([]RuleVersion, error) {
	var out []RuleVersion
	_, err := c.do(ctx, call{method: http.MethodGet, path: rules + "/" + url.PathEscape(id) + "/history", retry: true}, &out)
	return out, err
}

func ruleBody(r Rule) Rule {
	if r.Constraints == nil {
		r.Constraints = []Constraint{}
	}
	if r.Entitlements == nil {
		r.Entitlements = []Entitlement{}
	}
	return r
}

// Register asks for a lease for an agent. A refusal is an *Error whose
// Code says why (IsNoMoreUnits, ErrDeniedByFilter, …) and whose Decision
// explains it. Registering again with the same AgentID returns the lease
// it holds (Decision.Existing), so registrations are retried.
func (c *Client) Register(ctx context.Context, r Registration) (*Decision, error) {
	return c.register(ctx, r, false)
}

// RegisterDryRun computes the decision for r without storing anything.
func (c *Client) RegisterDryRun(ctx context.Context, r Registration) (*Decision, error) {
	return c.register(ctx, r, true)
}

func (c *Client) register(ctx context.Context, r Registration, dry bool) (*Decision, error) {
	var out Decision
	v := url.Values{}
	if dry {
		v.Set("dryRun", "true")
	}
	res, err := c.do(ctx, call{method: http.MethodPost, path: c.licensing("/registrations"), query: v, body: r, retry: true}, &out)
	out.Existing = res.Status == http.StatusOK && !dry
	return &out, err
}

// Heartbeat renews a lease; vCPU, when not nil, reports the host's vCPU.
// A revoked lease answers ErrPreempted (or the revocation's code) once.
func (c *Client) Heartbeat(ctx context.Context, registrationID string, vCPU *int64) (*Heartbeat, error) {
	var out Heartbeat
	var body any
	if vCPU != nil {
		body = map[string]int64{"vCpu": *vCPU}
	}
	_, err := c.do(ctx, call{method: http.MethodPost, path: c.licensing("/registrations/%s/heartbeat", url.PathEscape(registrationID)),
		body: body, retry: true}, &out)
	return &out, err
}

// MaxBatch is the most ids one Heartbeats call sends.
const MaxBatch = 10000

// Heartbeats renews many leases at once (at most MaxBatch ids).
func (c *Client) Heartbeats(ctx context.Context, registrationIDs []string) (*BatchHeartbeat, error) {
	var out BatchHeartbeat
	_, err := c.do(ctx, call{method: http.MethodPost, path: c.licensing("/registrations/heartbeats"),
		body: map[string][]string{"ids": registrationIDs}, retry: true}, &out)
	return &out, err
}

// Release gives a lease back.
func (c *Client) Release(ctx context.Context, registrationID string) error {
	_, err := c.do(ctx, call{method: http.MethodDelete, path: c.licensing("/registrations/%s", url.PathEscape(registrationID)), retry: true}, nil)
	return err
}

// ListLeases returns a page of the live leases.
func (c *Client) ListLeases(ctx context.Context, q LeaseQuery) (*LeasePage, error) {
	v := page(q.Size, q.Offset)
	set(v, "host", q.Host)
	set(v, "agentType", q.AgentType)
	set(v, "licenseKey", q.LicenseKey)
	if q.AppID != nil {
		v.Set("appId", strconv.FormatInt(*q.AppID, 10))
	}
	var out LeasePage
	_, err := c.do(ctx, call{method: http.MethodGet, path: c.licensing("/registrations"), query: v, retry: true}, &out)
	return &out, err
}

// UsageByApplicationIDs returns the grouped usage of applications by id
// (at most 1000); includeAgents lists the agents too.
func (c *Client) UsageByApplicationIDs(ctx context.Context, ids []int64, includeAgents bool) (*AppUsage, error) {
	v := url.Values{}
	for _, id := range ids {
		v.Add("appId", strconv.FormatInt(id, 10))
	}
	if includeAgents {
		v.Set("includeAgents", "true")
	}
	var out AppUsage
	_, err := c.do(ctx, call{method: http.MethodGet, path: c.licensing("/grouped-usage/application/by-id"), query: v, retry: true}, &out)
	return &out, err
}

// UsageByApplicationNames returns the grouped usage of applications by name.
func (c *Client) UsageByApplicationNames(ctx context.Context, names []string, includeAgents bool) (*AppUsage, error) {
	v := url.Values{"appName": names}
	if includeAgents {
		v.Set("includeAgents", "true")
	}
	var out AppUsage
	_, err := c.do(ctx, call{method: http.MethodGet, path: c.licensing("/grouped-usage/application/by-name"), query: v, retry: true}, &out)
	return &out, err
}

// UsageByHosts returns the grouped usage of hosts by id.
func (c *Client) UsageByHosts(ctx context.Context, hostIDs []string, includeAgents bool) (*HostUsage, error) {
	v := url.Values{"hostId": hostIDs}
	if includeAgents {
		v.Set("includeAgents", "true")
	}
	var out HostUsage
	_, err := c.do(ctx, call{method: http.MethodGet, path: c.licensing("/grouped-usage/host"), query: v, retry: true}, &out)
	return &out, err
}

// UsageSeries returns a usage time series of the account, a licence, or
// an allocation (q.LicenseKey).
func (c *Client) UsageSeries(ctx context.Context, q SeriesQuery) (*Series, error) {
	path := "/controller/licensing/v1/usage/account/" + strconv.FormatInt(c.opt.AccountID, 10)
	if q.LicenseID != "" {
		path = "/controller/licensing/v1/usage/license/" + url.PathEscape(q.LicenseID)
	}
	if q.LicenseKey != "" {
		path += "/allocation/" + url.PathEscape(q.LicenseKey)
	}
	v := url.Values{}
	if !q.From.IsZero() {
		v.Set("dateFrom", q.From.UTC().Format(time.RFC3339))
	}
	if !q.To.IsZero() {
		v.Set("dateTo", q.To.UTC().Format(time.RFC3339))
	}
	if q.GranularityMinutes > 0 {
		v.Set("granularityMinutes", strconv.Itoa(q.GranularityMinutes))
	}
	if q.IncludeEntityTypes {
		v.Set("includeEntityTypes", "true")
	}
	if q.IncludeConsumptionBased {
		v.Set("includeConsumptionBased", "true")
	}
	var out Series
	_, err := c.do(ctx, call{method: http.MethodGet, path: path, query: v, retry: true}, &out)
	return &out, err
}

func (q AnalyticsQuery) values() url.Values {
	v := url.Values{}
	if !q.From.IsZero() {
		v.Set("startDate", q.From.UTC().Format(time.RFC3339))
	}
	if !q.To.IsZero() {
		v.Set("endDate", q.To.UTC().Format(time.RFC3339))
	}
	set(v, "pool", q.Pool)
	set(v, "tag", q.Tag)
	return v
}

// AnalyticsAgents returns per agent type the peak concurrency, hosts,
// applications and lease hours of a window.
func (c *Client) AnalyticsAgents(ctx context.Context, q AnalyticsQuery) ([]AgentUsage, error) {
	var out []AgentUsage
	_, err := c.do(ctx, call{method: http.MethodGet, path: c.licensing("/analytics/agents"), query: q.values(), retry: true}, &out)
	return out, err
}

// AnalyticsPackages returns the packages each agent type used in a window.
func (c *Client) AnalyticsPackages(ctx context.Context, q AnalyticsQuery) ([]AgentPackages, error) {
	var out []AgentPackages
	_, err := c.do(ctx, call{method: http.MethodGet, path: c.licensing("/analytics/packages"), query: q.values(), retry: true}, &out)
	return out, err
}

// AnalyticsLeases returns the lease hours per host and application of a window.
func (c *Client) AnalyticsLeases(ctx context.Context, q AnalyticsQuery) ([]LeaseUsage, error) {
	var out []LeaseUsage
	_, err := c.do(ctx, call{method: http.MethodGet, path: c.licensing("/analytics/leases"), query: q.values(), retry: true}, &out)
	return out, err
}

// AnalyticsRejections returns every refusal of a window, grouped by reason.
func (c *Client) AnalyticsRejections(ctx context.Context, q AnalyticsQuery) (*Rejections, error) {
	var out Rejections
	_, err := c.do(ctx, call{method: http.MethodGet, path: c.licensing("/analytics/rejections"), query: q.values(), retry: true}, &out)
	return &out, err
}

// AnalyticsCSV writes the CSV export of one analytics endpoint ("agents",
// "packages", "leases" or "rejections") to w.
func (c *Client) AnalyticsCSV(ctx context.Context, kind string, q AnalyticsQuery, w io.Writer) error {
	_, err := c.do(ctx, call{method: http.MethodGet, path: c.licensing("/analytics/%s", url.PathEscape(kind)), query: q.values(),
		accept: "text/csv", retry: true}, w)
	return err
}

// Report writes the signed licence report (JSON) to w.
func (c *Client) Report(ctx context.Context, w io.Writer) error {
	_, err := c.do(ctx, call{method: http.MethodGet, path: c.licensing("/report"), retry: true}, w)
	return err
}

// Applications lists the applications the engine has seen.
func (c *Client) Applications(ctx context.Context) ([]InventoryApplication, error) {
	var out []InventoryApplication
	_, err := c.do(ctx, call{method: http.MethodGet, path: "/controller/rest/applications", query: url.Values{"output": {"JSON"}}, retry: true}, &out)
	return out, err
}

// ApplicationTiers lists the tiers of an application (by id or name).
func (c *Client) ApplicationTiers(ctx context.Context, idOrName string) ([]InventoryTier, error) {
	var out []InventoryTier
	_, err := c.do(ctx, call{method: http.MethodGet, path: "/controller/rest/applications/" + url.PathEscape(idOrName) + "/tiers",
		query: url.Values{"output": {"JSON"}}, retry: true}, &out)
	return out, err
}

// ApplicationNodes lists the nodes of an application (by id or name).
func (c *Client) ApplicationNodes(ctx context.Context, idOrName string) ([]InventoryNode, error) {
	var out []InventoryNode
	_, err := c.do(ctx, call{method: http.MethodGet, path: "/controller/rest/applications/" + url.PathEscape(idOrName) + "/nodes",
		query: url.Values{"output": {"JSON"}}, retry: true}, &out)
	return out, err
}

func page(size, offset int) url.Values {
	v := url.Values{}
	if size > 0 {
		v.Set("size", strconv.Itoa(size))
	}
	if offset > 0 {
		v.Set("offset", strconv.Itoa(offset))
	}
	return v
}

func set(v url.Values, k, s string) {
	if s != "" {
		v.Set(k, s)
	}
}

func (c *Client) accounts(format string, args ...any) string {
	return fmt.Sprintf("/controller/api/accounts/%d", c.opt.AccountID) + fmt.Sprintf(format, args...)
}

// ListUsers lists the account's users (permission ACCOUNT_ADMIN).
func (c *Client) ListUsers(ctx context.Context) ([]User, error) {
	var out []User
	_, err := c.do(ctx, call{method: http.MethodGet, path: c.accounts("/users"), retry: true}, &out)
	return out, err
}

// CreateUser creates a basic-auth user.
func (c *Client) CreateUser(ctx context.Context, name, role, password string) (*User, error) {
	var out User
	_, err := c.do(ctx, call{method: http.MethodPost, path: c.accounts("/users"),
		body: map[string]string{"name": name, "role": role, "password": password}}, &out)
	return &out, err
}

// UpdateUser changes a user's role and/or password (empty: unchanged).
func (c *Client) UpdateUser(ctx context.Context, name, role, password string) (*User, error) {
	body := map[string]string{}
	set := func(k, v string) {
		if v != "" {
			body[k] = v
		}
	}
	set("role", role)
	set("password", password)
	var out User
	_, err := c.do(ctx, call{method: http.MethodPut, path: c.accounts("/users/%s", url.PathEscape(name)), body: body, retry: true}, &out)
	return &out, err
}

// DeleteUser deletes a user.
func (c *Client) DeleteUser(ctx context.Context, name string) error {
	_, err := c.do(ctx, call{method: http.MethodDelete, path: c.accounts("/users/%s", url.PathEscape(name)), retry: true}, nil)
	return err
}

// ListAPIClients lists the account's API clients (never their secrets).
func (c *Client) ListAPIClients(ctx context.Context) ([]APIClient, error) {
	var out []APIClient
	_, err := c.do(ctx, call{method: http.MethodGet, path: c.accounts("/api-clients"), retry: true}, &out)
	return out, err
}

// CreateAPIClient creates an API client; the answer carries its secret,
// shown this once.
func (c *Client) CreateAPIClient(ctx context.Context, in APIClientInput) (*APIClient, error) {
	var out APIClient
	_, err := c.do(ctx, call{method: http.MethodPost, path: c.accounts("/api-clients"), body: in}, &out)
	return &out, err
}

// DeleteAPIClient deletes an API client; its tokens stop working at once.
func (c *Client) DeleteAPIClient(ctx context.Context, name string) error {
	_, err := c.do(ctx, call{method: http.MethodDelete, path: c.accounts("/api-clients/%s", url.PathEscape(name)), retry: true}, nil)
	return err
}
