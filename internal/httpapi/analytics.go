package httpapi

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lcorp/licensing-controller/internal/fault"
	"github.com/lcorp/licensing-controller/internal/usage"
)

// PackageCountDTO is the number of leases in a package.
type PackageCountDTO struct {
	Package string `json:"package" example:"PREMIUM"`
	Count   int    `json:"count" example:"3"`
}

// AgentUsageDTO is one agent type's usage in the window (toolsUsage).
type AgentUsageDTO struct {
	AgentType                          string            `json:"agentType" example:"APP_AGENT"`
	MaxConcurrentLicenseCount          int               `json:"maxConcurrentLicenseCount" example:"3"`
	MaxConcurrentLicenseTime           *time.Time        `json:"maxConcurrentLicenseTime"`
	PackagesAtMaxConcurrentLicenseTime []PackageCountDTO `json:"packagesAtMaxConcurrentLicenseTime"`
	UniqueHostCount                    int               `json:"uniqueHostCount" example:"2"`
	UniqueApplicationCount             int               `json:"uniqueApplicationCount" example:"1"`
	UsageHours                         float64           `json:"usageHours" example:"12.5"`
}

// AgentPackagesDTO is the packages one agent type used (featuresUsage).
type AgentPackagesDTO struct {
	AgentType string   `json:"agentType" example:"APP_AGENT"`
	Packages  []string `json:"packages"`
}

// AnalyticsHostDTO is a host by id and name.
type AnalyticsHostDTO struct {
	ID   string `json:"id" example:"ip-10-117-85-124"`
	Name string `json:"name" example:"ip-10-117-85-124"`
}

// LeaseUsageDTO is one agent type and version's usage on a host for an
// application (licenseUsage).
type LeaseUsageDTO struct {
	AgentType    string           `json:"agentType" example:"APP_AGENT"`
	AgentVersion string           `json:"agentVersion" example:"24.7.0"`
	Packages     []string         `json:"packages"`
	UsageHours   float64          `json:"usageHours" example:"3.25"`
	Host         AnalyticsHostDTO `json:"host"`
	Application  *ApplicationDTO  `json:"application"`
}

// RequestKeyDTO is what refused registrations asked for.
type RequestKeyDTO struct {
	AgentType        string `json:"agentType" example:"APP_AGENT"`
	AgentVersion     string `json:"agentVersion" example:"24.7.0"`
	RequestedPackage string `json:"requestedPackage" example:"PREMIUM"`
	Pool             string `json:"pool" example:"team-a"`
}

// RejectionHostDTO is the refusals of one host and application.
type RejectionHostDTO struct {
	Host        string    `json:"host" example:"ip-10-117-85-124"`
	Application *string   `json:"application" example:"Sangrah-OrderFulfillment"`
	Count       int       `json:"count" example:"2"`
	Times       jsonTimes `json:"times" swaggertype:"array,string" format:"date-time"`
}

// jsonTimes encodes as a []time.Time does, in one call: encoding/json
// calls a Marshaler per element and scans each one's bytes again, and a
// window of refusals holds 100,000s of times.
type jsonTimes []time.Time

func (ts jsonTimes) MarshalJSON() ([]byte, error) {
	if ts == nil {
		return []byte("null"), nil
	}
	b := make([]byte, 0, 2+len(ts)*len(`"2006-01-02T15:04:05.999999999Z",`))
	b = append(b, '[')
	for i, t := range ts {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		var err error
		if b, err = t.AppendText(b); err != nil {
			return nil, fmt.Errorf("refusal time: %w", err)
		}
		b = append(b, '"')
	}
	return append(b, ']'), nil
}

// ResponseStatisticsDTO counts the refusals of one request key.
type ResponseStatisticsDTO struct {
	Count     int                `json:"count" example:"2"`
	HostCount int                `json:"hostCount" example:"1"`
	Hosts     []RejectionHostDTO `json:"hosts"`
}

// RejectionGroupDTO is the refusals of one request key (licenseRejection).
type RejectionGroupDTO struct {
	RequestKey         RequestKeyDTO         `json:"requestKey"`
	ResponseStatistics ResponseStatisticsDTO `json:"responseStatistics"`
}

// RejectionsDTO is every refusal of the window, by reason.
type RejectionsDTO struct {
	NoMoreUnits        []RejectionGroupDTO `json:"noMoreUnits"`
	PackageNotLicensed []RejectionGroupDTO `json:"packageNotLicensed"`
	DeniedByFilter     []RejectionGroupDTO `json:"deniedByFilter"`
	Other              []RejectionGroupDTO `json:"other"`
}

// analyticsQuery reads startDate (inclusive), endDate (exclusive), pool
// and tag; dates are yyyy-MM-dd (UTC midnight) or RFC 3339.
func analyticsQuery(c *gin.Context) (usage.AnalyticsQuery, error) {
	q := usage.AnalyticsQuery{AccountID: accountID(c), Pool: c.Query("pool"), Tag: c.Query("tag")}
	// No pool or tag is longer (a licence key is at most 255 bytes, a
	// tag 64): a longer one is a mistake, not an empty answer.
	if len(q.Pool) > 255 {
		return q, fault.Invalid("pool", "must be at most 255 bytes")
	}
	if len(q.Tag) > 64 {
		return q, fault.Invalid("tag", "must be at most 64 bytes")
	}
	var err error
	q.From, q.To, err = dateRange(c, "startDate", "endDate")
	return q, err
}

// dateQuery reads an optional date query parameter: yyyy-MM-dd (UTC
// midnight) or RFC 3339; zero when absent. A bad one is added to fields.
func dateQuery(c *gin.Context, name string, fields *[]fault.FieldError) time.Time {
	v := c.Query(name)
	if v == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.DateOnly, v)
	if err != nil {
		t, err = time.Parse(time.RFC3339, v)
	}
	switch {
	case err != nil:
		*fields = append(*fields, fault.FieldError{Field: name, Message: "must be yyyy-MM-dd or an RFC 3339 date-time"})
	case t.Year() < 1970 || t.Year() > 9999:
		// The zero time would read as "not given".
		*fields = append(*fields, fault.FieldError{Field: name, Message: "must be a date from 1970 on"})
	}
	return t.UTC()
}

// dateRange reads two optional dates, the first before the second.
func dateRange(c *gin.Context, fromName, toName string) (from, to time.Time, err error) {
	var fields []fault.FieldError
	from, to = dateQuery(c, fromName, &fields), dateQuery(c, toName, &fields)
	if err := fault.Invalids(fields); err != nil {
		return from, to, err
	}
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		return from, to, fault.Invalid(toName, "must be after "+fromName)
	}
	return from, to, nil
}

// wantsCSV reports ?format=csv or Accept: text/csv.
func wantsCSV(c *gin.Context) bool {
	return strings.EqualFold(c.Query("format"), "csv") || strings.Contains(strings.ToLower(c.GetHeader("Accept")), "text/csv")
}

// writeCSV answers RFC 4180 CSV: a header row, then one row per item.
func (a *API) writeCSV(c *gin.Context, name string, header []string, rows [][]string) {
	w := startCSV(c, name, header)
	for _, r := range rows {
		w.Write(r)
	}
	w.Flush()
}

// csvWriter writes rows of an export with every cell defused (csvCell).
type csvWriter struct{ w *csv.Writer }

// Write writes one row; a failed write is a gone client, nothing to answer.
func (cw csvWriter) Write(row []string) {
	safe := make([]string, len(row))
	for i, v := range row {
		safe[i] = csvCell(v)
	}
	_ = cw.w.Write(safe)
}

// Flush sends what is buffered.
func (cw csvWriter) Flush() { cw.w.Flush() }

// csvCell defuses a cell that a spreadsheet would run as a formula (a
// leading =, +, -, @, tab or carriage return: OWASP's CSV injection) by
// prefixing a quote; numbers stay as they are. Names and request ids are
// chosen by users, and exports are opened by someone else.
func csvCell(v string) string {
	if v == "" || !strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return v
	}
	if _, err := strconv.ParseFloat(v, 64); err == nil {
		return v
	}
	return "'" + v
}

// startCSV begins a CSV answer with its header row; the caller writes the
// rows (and flushes as it goes, for long exports).
func startCSV(c *gin.Context, name string, header []string) csvWriter {
	c.Header("Content-Type", "text/csv; charset=utf-8")
	c.Header("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.csv"`, name))
	c.Status(http.StatusOK)
	w := csv.NewWriter(c.Writer)
	w.UseCRLF = true // RFC 4180
	_ = w.Write(header)
	return csvWriter{w}
}

func hoursText(h float64) string { return strconv.FormatFloat(h, 'f', -1, 64) }

func timeText(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.Format(time.RFC3339)
}

func appText(id *int64, name *string) (string, string) {
	i, n := "", ""
	if id != nil {
		i = strconv.FormatInt(*id, 10)
	}
	if name != nil {
		n = *name
	}
	return i, n
}

// analyticsAgents godoc
//
//	@Summary		Per agent type: the most leases at once (and when, in which packages), hosts, applications, lease hours
//	@Description	A lease counts from its grant (or startDate) to its release or expiry (or endDate; a live one to now); usageHours are exact to the second; the maximum is the true maximum over the window and its time the first moment it was reached. CSV with ?format=csv or Accept: text/csv.
//	@Tags			analytics
//	@Produce		json
//	@Produce		text/csv
//	@Security		BasicAuth
//	@Security		BearerAuth
//	@Param			accountId	path		int		true	"account id"
//	@Param			startDate	query		string	false	"inclusive, yyyy-MM-dd or RFC 3339 (default: the oldest event)"
//	@Param			endDate		query		string	false	"exclusive, yyyy-MM-dd or RFC 3339 (default: now)"
//	@Param			pool		query		string	false	"an allocation or rule: id, licence key or access key"
//	@Param			tag			query		string	false	"allocations with this tag"
//	@Param			format		query		string	false	"csv"
//	@Success		200			{array}		AgentUsageDTO
//	@Failure		400			{object}	Problem	"VALIDATION_FAILED"
//	@Failure		401			{object}	Problem
//	@Failure		403			{object}	Problem	"LICENSE_USAGE missing"
//	@Failure		404			{object}	Problem	"ACCOUNT_NOT_FOUND, POOL_NOT_FOUND"
//	@Failure		503			{object}	Problem
//	@Router			/controller/licensing/v1/account/{accountId}/analytics/agents [get]
func (a *API) analyticsAgents(c *gin.Context) {
	q, err := analyticsQuery(c)
	if err != nil {
		a.fail(c, err)
		return
	}
	us, err := a.analytics.Agents(c.Request.Context(), q)
	if err != nil {
		a.fail(c, err)
		return
	}
	out := make([]AgentUsageDTO, len(us))
	rows := make([][]string, len(us))
	for i, u := range us {
		d := AgentUsageDTO{AgentType: u.AgentType, MaxConcurrentLicenseCount: u.MaxConcurrent, MaxConcurrentLicenseTime: u.MaxConcurrentAt,
			PackagesAtMaxConcurrentLicenseTime: make([]PackageCountDTO, len(u.PackagesAtMax)), UniqueHostCount: u.UniqueHosts,
			UniqueApplicationCount: u.UniqueApplications, UsageHours: u.UsageHours}
		pk := make([]string, len(u.PackagesAtMax))
		for j, p := range u.PackagesAtMax {
			d.PackagesAtMaxConcurrentLicenseTime[j] = PackageCountDTO(p)
			pk[j] = p.Package + ":" + strconv.Itoa(p.Count)
		}
		out[i] = d
		rows[i] = []string{u.AgentType, strconv.Itoa(u.MaxConcurrent), timeText(u.MaxConcurrentAt), strings.Join(pk, ";"),
			strconv.Itoa(u.UniqueHosts), strconv.Itoa(u.UniqueApplications), hoursText(u.UsageHours)}
	}
	if wantsCSV(c) {
		a.writeCSV(c, "agents", []string{"agentType", "maxConcurrentLicenseCount", "maxConcurrentLicenseTime",
			"packagesAtMaxConcurrentLicenseTime", "uniqueHostCount", "uniqueApplicationCount", "usageHours"}, rows)
		return
	}
	c.JSON(http.StatusOK, out)
}

// analyticsPackages godoc
//
//	@Summary	Per agent type, the packages its leases used in the window
//	@Tags		analytics
//	@Produce	json
//	@Produce	text/csv
//	@Security	BasicAuth
//	@Security	BearerAuth
//	@Param		accountId	path		int		true	"account id"
//	@Param		startDate	query		string	false	"inclusive, yyyy-MM-dd or RFC 3339 (default: the oldest event)"
//	@Param		endDate		query		string	false	"exclusive, yyyy-MM-dd or RFC 3339 (default: now)"
//	@Param		pool		query		string	false	"an allocation or rule: id, licence key or access key"
//	@Param		tag			query		string	false	"allocations with this tag"
//	@Param		format		query		string	false	"csv"
//	@Success	200			{array}		AgentPackagesDTO
//	@Failure	400			{object}	Problem	"VALIDATION_FAILED"
//	@Failure	401			{object}	Problem
//	@Failure	403			{object}	Problem	"LICENSE_USAGE missing"
//	@Failure	404			{object}	Problem	"ACCOUNT_NOT_FOUND, POOL_NOT_FOUND"
//	@Failure	503			{object}	Problem
//	@Router		/controller/licensing/v1/account/{accountId}/analytics/packages [get]
func (a *API) analyticsPackages(c *gin.Context) {
	q, err := analyticsQuery(c)
	if err != nil {
		a.fail(c, err)
		return
	}
	ps, err := a.analytics.Packages(c.Request.Context(), q)
	if err != nil {
		a.fail(c, err)
		return
	}
	out := make([]AgentPackagesDTO, len(ps))
	rows := make([][]string, len(ps))
	for i, p := range ps {
		out[i] = AgentPackagesDTO(p)
		rows[i] = []string{p.AgentType, strings.Join(p.Packages, ";")}
	}
	if wantsCSV(c) {
		a.writeCSV(c, "packages", []string{"agentType", "packages"}, rows)
		return
	}
	c.JSON(http.StatusOK, out)
}

// analyticsLeases godoc
//
//	@Summary	Per host and application (and agent type and version): the lease hours and packages in the window
//	@Tags		analytics
//	@Produce	json
//	@Produce	text/csv
//	@Security	BasicAuth
//	@Security	BearerAuth
//	@Param		accountId	path		int		true	"account id"
//	@Param		startDate	query		string	false	"inclusive, yyyy-MM-dd or RFC 3339 (default: the oldest event)"
//	@Param		endDate		query		string	false	"exclusive, yyyy-MM-dd or RFC 3339 (default: now)"
//	@Param		pool		query		string	false	"an allocation or rule: id, licence key or access key"
//	@Param		tag			query		string	false	"allocations with this tag"
//	@Param		format		query		string	false	"csv"
//	@Success	200			{array}		LeaseUsageDTO
//	@Failure	400			{object}	Problem	"VALIDATION_FAILED"
//	@Failure	401			{object}	Problem
//	@Failure	403			{object}	Problem	"LICENSE_USAGE missing"
//	@Failure	404			{object}	Problem	"ACCOUNT_NOT_FOUND, POOL_NOT_FOUND"
//	@Failure	503			{object}	Problem
//	@Router		/controller/licensing/v1/account/{accountId}/analytics/leases [get]
func (a *API) analyticsLeases(c *gin.Context) {
	q, err := analyticsQuery(c)
	if err != nil {
		a.fail(c, err)
		return
	}
	ls, err := a.analytics.Leases(c.Request.Context(), q)
	if err != nil {
		a.fail(c, err)
		return
	}
	if wantsCSV(c) {
		rows := make([][]string, len(ls))
		for i, l := range ls {
			appID, appName := appText(l.AppID, l.AppName)
			rows[i] = []string{l.AgentType, l.AgentVersion, strings.Join(l.Packages, ";"), hoursText(l.UsageHours), l.HostID, l.HostName, appID, appName}
		}
		a.writeCSV(c, "leases", []string{"agentType", "agentVersion", "packages", "usageHours", "hostId", "hostName",
			"applicationId", "applicationName"}, rows)
		return
	}
	writeLeasesJSON(c, ls)
}

// analyticsRejections godoc
//
//	@Summary		Every refusal of the window, by reason, agent type and version, requested package and pool, with the hosts and times
//	@Description	CSV: one row per reason and request key; hosts as host|application|count joined with ';'.
//	@Tags			analytics
//	@Produce		json
//	@Produce		text/csv
//	@Security		BasicAuth
//	@Security		BearerAuth
//	@Param			accountId	path		int		true	"account id"
//	@Param			startDate	query		string	false	"inclusive, yyyy-MM-dd or RFC 3339 (default: the oldest event)"
//	@Param			endDate		query		string	false	"exclusive, yyyy-MM-dd or RFC 3339 (default: now)"
//	@Param			pool		query		string	false	"an allocation or rule: id, licence key or access key"
//	@Param			tag			query		string	false	"allocations with this tag"
//	@Param			format		query		string	false	"csv"
//	@Success		200			{object}	RejectionsDTO
//	@Failure		400			{object}	Problem	"VALIDATION_FAILED"
//	@Failure		401			{object}	Problem
//	@Failure		403			{object}	Problem	"LICENSE_USAGE missing"
//	@Failure		404			{object}	Problem	"ACCOUNT_NOT_FOUND, POOL_NOT_FOUND"
//	@Failure		503			{object}	Problem
//	@Router			/controller/licensing/v1/account/{accountId}/analytics/rejections [get]
func (a *API) analyticsRejections(c *gin.Context) {
	q, err := analyticsQuery(c)
	if err != nil {
		a.fail(c, err)
		return
	}
	rj, err := a.analytics.Rejections(c.Request.Context(), q)
	if err != nil {
		a.fail(c, err)
		return
	}
	var rows [][]string
	conv := func(reason string, gs []usage.RejectionGroup) []RejectionGroupDTO {
		out := make([]RejectionGroupDTO, len(gs))
		for i, g := range gs {
			d := RejectionGroupDTO{RequestKey: RequestKeyDTO(g.Key),
				ResponseStatistics: ResponseStatisticsDTO{Count: g.Count, HostCount: g.HostCount, Hosts: make([]RejectionHostDTO, len(g.Hosts))}}
			hosts := make([]string, len(g.Hosts))
			for j, h := range g.Hosts {
				host := h.HostName
				if host == "" {
					host = h.HostID
				}
				var app *string
				if h.AppName != nil {
					app = h.AppName
				} else if h.AppID != nil {
					s := strconv.FormatInt(*h.AppID, 10)
					app = &s
				}
				d.ResponseStatistics.Hosts[j] = RejectionHostDTO{Host: host, Application: app, Count: h.Count, Times: h.Times}
				appName := ""
				if app != nil {
					appName = *app
				}
				hosts[j] = host + "|" + appName + "|" + strconv.Itoa(h.Count)
			}
			out[i] = d
			rows = append(rows, []string{reason, g.Key.AgentType, g.Key.AgentVersion, g.Key.RequestedPackage, g.Key.Pool,
				strconv.Itoa(g.Count), strconv.Itoa(g.HostCount), strings.Join(hosts, ";")})
		}
		return out
	}
	out := RejectionsDTO{NoMoreUnits: conv("noMoreUnits", rj.NoMoreUnits), PackageNotLicensed: conv("packageNotLicensed", rj.PackageNotLicensed),
		DeniedByFilter: conv("deniedByFilter", rj.DeniedByFilter), Other: conv("other", rj.Other)}
	if wantsCSV(c) {
		a.writeCSV(c, "rejections", []string{"reason", "agentType", "agentVersion", "requestedPackage", "pool", "count", "hostCount", "hosts"}, rows)
		return
	}
	c.JSON(http.StatusOK, out)
}
