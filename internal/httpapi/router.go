// Package httpapi is the HTTP interface of the licensing controller: the
// Gin router, middleware, request/response DTOs and the error mapping.
//
//	@title						licensing-controller API
//	@version					1.0
//	@description				Licence pool, allocations, licence rules and usage of an AppDynamics-style controller. Paths and JSON shapes follow the AppDynamics License API.
//	@BasePath					/
//	@securityDefinitions.basic	BasicAuth
//	@securityDefinitions.apikey	BearerAuth
//	@in							header
//	@name						Authorization
//	@description				"Bearer <access_token>" from /controller/api/oauth/access_token
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gin-gonic/gin/binding"
	"github.com/go-playground/validator/v10"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	swaggerFiles "github.com/swaggo/files"
	ginSwagger "github.com/swaggo/gin-swagger"

	_ "github.com/lcorp/licensing-controller/docs" // generated OpenAPI document
	"github.com/lcorp/licensing-controller/internal/audit"
	"github.com/lcorp/licensing-controller/internal/auth"
	"github.com/lcorp/licensing-controller/internal/engine"
	"github.com/lcorp/licensing-controller/internal/licensing"
	"github.com/lcorp/licensing-controller/internal/report"
	"github.com/lcorp/licensing-controller/internal/ui"
	"github.com/lcorp/licensing-controller/internal/usage"
	"github.com/lcorp/licensing-controller/internal/webhook"
)

func init() {
	gin.SetMode(gin.ReleaseMode)
	// Unknown fields are rejected so that typos do not silently do nothing.
	binding.EnableDecoderDisallowUnknownFields = true
	if v, ok := binding.Validator.Engine().(*validator.Validate); ok {
		v.RegisterTagNameFunc(jsonFieldName)
	}
}

// Deps are what the API needs from the rest of the service.
type Deps struct {
	Auth      *auth.Service
	Licensing *licensing.Service
	Engine    *engine.Engine
	Usage     *usage.Service
	Series    *usage.Series
	Analytics *usage.Analytics
	Lint      *usage.Linter
	WhatIf    *usage.WhatIf
	Report    *report.Service
	Webhooks  *webhook.Service
	Audit     *audit.Service
	// Ready reports whether the database answers and is migrated.
	Ready        func(ctx context.Context) error
	Logger       *slog.Logger
	Registry     *prometheus.Registry
	MaxBodyBytes int64
	Version      string
	// RequestTimeout is every request's deadline (default 10s).
	RequestTimeout time.Duration
	// TrustedProxies are the peers whose X-Forwarded-* headers are believed.
	TrustedProxies []string
	// Now is the clock of forecasts (default time.Now).
	Now func() time.Time
	// ReadReplica routes the read-only endpoints' reads; zero: none.
	ReadReplica ReadReplica
}

// API holds the handlers' dependencies.
type API struct {
	auth      *auth.Service
	lic       *licensing.Service
	eng       *engine.Engine
	usage     *usage.Service
	series    *usage.Series
	analytics *usage.Analytics
	lint      *usage.Linter
	whatif    *usage.WhatIf
	report    *report.Service
	webhooks  *webhook.Service
	audit     *audit.Service
	ready     func(ctx context.Context) error
	log       *slog.Logger
	maxBody   int64
	version   string
	timeout   time.Duration
	proxies   []netip.Prefix // LC_TRUSTED_PROXIES
	now       func() time.Time
	// infoBodies holds each account's encoded /info answer.
	infoBodies infoCache
	replica    ReadReplica
	writers    writers
}

// Router is the API's handler: the Gin engine behind a trailing-slash
// rewrite, so that "/path/" serves what "/path" does (API.md §0) instead
// of a redirect that scripts do not follow.
type Router struct{ *gin.Engine }

// ServeHTTP strips a trailing slash (but from "/" and the Swagger UI's
// paths) and serves the request.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if p := req.URL.Path; len(p) > 1 && strings.HasSuffix(p, "/") && !strings.HasPrefix(p, "/swagger/") {
		req.URL.Path = strings.TrimRight(p, "/")
		if req.URL.Path == "" {
			req.URL.Path = "/"
		}
		req.URL.RawPath = ""
	}
	r.Engine.ServeHTTP(w, req)
}

// mustDashboard loads the dashboard's embedded assets: they are part of
// the binary, so a failure is a broken build.
func mustDashboard() *ui.Handler {
	h, err := ui.New()
	if err != nil {
		panic(err)
	}
	return h
}

// New builds the router.
func New(d Deps) *Router {
	if d.MaxBodyBytes <= 0 {
		d.MaxBodyBytes = 1 << 20
	}
	if d.RequestTimeout <= 0 {
		d.RequestTimeout = 10 * time.Second
	}
	a := &API{auth: d.Auth, lic: d.Licensing, eng: d.Engine, usage: d.Usage, series: d.Series, analytics: d.Analytics, lint: d.Lint, whatif: d.WhatIf, report: d.Report, webhooks: d.Webhooks, audit: d.Audit, ready: d.Ready, log: d.Logger,
		maxBody: d.MaxBodyBytes, version: d.Version, timeout: d.RequestTimeout, now: d.Now, replica: d.ReadReplica,
		writers: writers{last: map[string]time.Time{}, window: d.ReadReplica.Window}}
	if a.now == nil {
		a.now = time.Now
	}
	for _, p := range d.TrustedProxies {
		if pre, err := netip.ParsePrefix(p); err == nil {
			a.proxies = append(a.proxies, pre.Masked())
		} else if ip, err := netip.ParseAddr(p); err == nil {
			a.proxies = append(a.proxies, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
		}
	}
	m := newHTTPMetrics(d.Registry)

	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.RedirectTrailingSlash = false // Router.ServeHTTP strips it instead
	r.ContextWithFallback = true
	// Throttling is per remote address: X-Forwarded-For is believed only
	// from the configured proxies (none by default). The addresses were
	// validated with the configuration.
	r.RemoteIPHeaders = []string{"X-Forwarded-For"}
	if err := r.SetTrustedProxies(d.TrustedProxies); err != nil {
		_ = r.SetTrustedProxies(nil)
	}
	r.Use(withRequestID, a.accessLog, m.observe, a.recoverPanics, a.deadline, a.limitBody, a.cleanInput, a.cleanBody)
	r.NoRoute(func(c *gin.Context) {
		a.problem(c, http.StatusNotFound, "NOT_FOUND", "no such resource: "+c.Request.URL.Path)
	})
	r.NoMethod(func(c *gin.Context) {
		a.problem(c, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED",
			c.Request.Method+" is not allowed on "+c.Request.URL.Path)
	})

	r.GET("/healthz", a.healthz)
	r.GET("/readyz", a.readyz)
	r.GET("/metrics", metricsHandler(d.Registry))
	r.GET("/swagger/*any", ginSwagger.WrapHandler(swaggerFiles.Handler))
	// A browser at the service's address lands on the dashboard.
	r.GET("/", func(c *gin.Context) { c.Redirect(http.StatusFound, ui.Root+"/") })
	dashboard := gin.WrapH(mustDashboard())
	r.GET(ui.Root, dashboard)
	r.HEAD(ui.Root, dashboard)
	r.GET(ui.Root+"/assets/*path", dashboard)
	r.HEAD(ui.Root+"/assets/*path", dashboard)

	api := r.Group("/controller/api")
	api.POST("/oauth/access_token", a.accessToken)
	authed := api.Group("", a.authenticate)
	authed.GET("/accounts/myaccount", a.myAccount)
	authed.GET("/accounts/myaccount/principal", a.myPrincipal)
	authed.GET("/accounts/:accountId", a.ownAccount, a.accountByID)
	acct := authed.Group("/accounts/:accountId", a.ownAccount, a.require(auth.PermAccountAdmin))
	acct.GET("/users", a.listUsers)
	acct.POST("/users", a.createUser)
	acct.PUT("/users/:name", a.updateUser)
	acct.DELETE("/users/:name", a.deleteUser)
	acct.GET("/api-clients", a.listAPIClients)
	acct.POST("/api-clients", a.createAPIClient)
	acct.DELETE("/api-clients/:name", a.deleteAPIClient)

	// The read-only endpoints may read from the read replica.
	rr := a.replicaRead
	lv1 := r.Group("/controller/licensing/v1/account/:accountId", a.authenticate, a.ownAccount)
	read, write := a.require(auth.PermAccountLicense), a.require(auth.PermLicenseWrite)
	lv1.GET("/info", rr, read, a.accountInfo)
	lv1.GET("/licenses", rr, read, a.listLicenses)
	lv1.GET("/licenses/:id", rr, read, a.getLicense)
	lv1.POST("/licenses", write, a.postLicense)
	lv1.PUT("/licenses/:id", write, a.replaceLicense)
	lv1.PATCH("/licenses/:id", write, a.patchLicense)
	lv1.DELETE("/licenses/:id", write, a.deleteLicense)
	ruleRead, ruleWrite := a.require(auth.PermLicenseRule), a.require(auth.PermLicenseRuleWrite)
	lv1.GET("/allocation", rr, ruleRead, a.listAllocations)
	lv1.GET("/allocation/:allocationId", rr, ruleRead, a.getAllocation)
	lv1.GET("/allocation/forecast", rr, ruleRead, a.accountForecast)
	lv1.GET("/allocation/lint", rr, ruleRead, a.allocationLint)
	lv1.GET("/allocation/:allocationId/forecast", rr, ruleRead, a.allocationForecast)
	lv1.POST("/allocation", ruleWrite, a.createAllocation)
	lv1.POST("/allocation/what-if", ruleRead, a.allocationWhatIf)
	lv1.PUT("/allocation/:allocationId", ruleWrite, a.updateAllocation)
	lv1.DELETE("/allocation/:allocationId", ruleWrite, a.deleteAllocation)

	agents := a.require(auth.PermAgentRegistration)
	lv1.POST("/registrations", agents, a.register)
	lv1.GET("/registrations", rr, a.requireAny(auth.PermAgentRegistration, auth.PermAccountLicense), a.listRegistrations)
	lv1.POST("/registrations/heartbeats", agents, a.heartbeats)
	lv1.POST("/registrations/:registrationId/heartbeat", agents, a.heartbeat)
	lv1.DELETE("/registrations/:registrationId", agents, a.release)
	lv1.GET("/grouped-usage/application/by-id", rr, read, a.usageByAppID)
	lv1.GET("/grouped-usage/application/by-name", rr, read, a.usageByAppName)
	lv1.GET("/grouped-usage/host", rr, read, a.usageByHost)
	usageRead := a.require(auth.PermLicenseUsage)
	lv1.GET("/analytics/agents", rr, usageRead, a.analyticsAgents)
	lv1.GET("/analytics/packages", rr, usageRead, a.analyticsPackages)
	lv1.GET("/analytics/leases", rr, usageRead, a.analyticsLeases)
	lv1.GET("/analytics/rejections", rr, usageRead, a.analyticsRejections)
	lv1.GET("/report", rr, usageRead, a.licenseReport)
	admin := a.require(auth.PermAccountAdmin)
	lv1.GET("/audit", rr, admin, a.auditLog)
	hooks := lv1.Group("/webhooks", admin)
	hooks.GET("", a.listWebhooks)
	hooks.POST("", a.createWebhook)
	hooks.GET("/:webhookId", a.getWebhook)
	hooks.PUT("/:webhookId", a.updateWebhook)
	hooks.DELETE("/:webhookId", a.deleteWebhook)
	hooks.GET("/:webhookId/deliveries", a.listDeliveries)
	hooks.POST("/:webhookId/ping", a.pingWebhook)
	hooks.POST("/:webhookId/deliveries/:deliveryId/redeliver", a.redeliverOfWebhook)
	hooks.POST("/deliveries/:deliveryId/redeliver", a.redeliver)
	inventory := r.Group("/controller/rest/applications", a.authenticate, read)
	inventory.GET("", rr, a.applications)
	inventory.GET("/:idOrName", rr, a.application)
	inventory.GET("/:idOrName/nodes", rr, a.applicationNodes)
	inventory.GET("/:idOrName/tiers", rr, a.applicationTiers)
	acctRead := authed.Group("/accounts/:accountId", a.ownAccount, read)
	acctRead.GET("/applications", rr, a.accountApplications)
	acctRead.GET("/applications/:appId/nodes", rr, a.accountApplicationNodes)
	acctRead.GET("/licensemodules", rr, a.licenseModules)
	acctRead.GET("/licensemodules/:name/properties", rr, a.licenseModuleProperties)
	acctRead.GET("/licensemodules/:name/usages", rr, a.licenseModuleUsages)

	// Usage time series (§6): the account is in the path or is the caller's.
	series := r.Group("/controller/licensing/v1/usage", a.authenticate)
	seriesRead := a.require(auth.PermLicenseUsage)
	series.GET("/account/:accountId", rr, a.ownAccount, seriesRead, a.accountSeries)
	series.GET("/account/:accountId/allocation/:licenseKey", rr, a.ownAccount, seriesRead, a.allocationSeries)
	series.GET("/license/:licenseId", rr, seriesRead, a.licenseSeries)
	series.GET("/license/:licenseId/allocation/:licenseKey", rr, seriesRead, a.licenseAllocationSeries)

	// Licence rules belong to the caller's account: no account in the path.
	// Clients use both prefixes (the seed's GET-by-id is under /mds).
	for _, prefix := range []string{"/controller/mds/v1/license/rules", "/mds/v1/license/rules"} {
		rules := r.Group(prefix, a.authenticate)
		rules.GET("", rr, ruleRead, a.listRules)
		rules.POST("", ruleWrite, a.createRule)
		rules.PUT("", ruleWrite, a.updateRule)
		rules.GET("/:id", rr, ruleRead, a.getRule)
		rules.DELETE("/:id", ruleWrite, a.deleteRule)
		rules.GET("/:id/history", rr, ruleRead, a.ruleHistory)
		rules.GET("/accessKey/:accessKey", rr, ruleRead, a.getRuleByAccessKey)
		rules.GET("/name/:name", rr, ruleRead, a.getRuleByName)
	}
	return &Router{r}
}

// healthz godoc
//
//	@Summary	Liveness: the process answers
//	@Tags		platform
//	@Produce	json
//	@Success	200	{object}	map[string]string
//	@Router		/healthz [get]
func (a *API) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok", "version": a.version})
}

// readyz godoc
//
//	@Summary	Readiness: the database answers and is migrated
//	@Tags		platform
//	@Produce	json
//	@Success	200	{object}	map[string]string
//	@Failure	503	{object}	Problem
//	@Router		/readyz [get]
func (a *API) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	if err := a.ready(ctx); err != nil {
		a.fail(c, unavailable(err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}

// metricsHandler godoc
//
//	@Summary	Prometheus metrics (text exposition format)
//	@Tags		platform
//	@Produce	plain
//	@Success	200	{string}	string
//	@Router		/metrics [get]
func metricsHandler(reg *prometheus.Registry) gin.HandlerFunc {
	return gin.WrapH(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
}
