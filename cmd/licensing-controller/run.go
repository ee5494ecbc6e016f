package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/user"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/lcorp/licensing-controller/internal/audit"
	"github.com/lcorp/licensing-controller/internal/auth"
	"github.com/lcorp/licensing-controller/internal/config"
	"github.com/lcorp/licensing-controller/internal/engine"
	"github.com/lcorp/licensing-controller/internal/fault"
	"github.com/lcorp/licensing-controller/internal/httpapi"
	"github.com/lcorp/licensing-controller/internal/jobs"
	"github.com/lcorp/licensing-controller/internal/licensing"
	"github.com/lcorp/licensing-controller/internal/store"
	"github.com/lcorp/licensing-controller/internal/usage"
	"github.com/lcorp/licensing-controller/internal/webhook"
)

// run parses args and runs one command. It is the whole program but for
// signal handling and the exit code.
func run(ctx context.Context, args []string, e env) error {
	// Settings are read after the command line is parsed, so that --help
	// and version work whatever the environment holds.
	cfg := config.Default()
	root := &cobra.Command{
		Use:   "licensing-controller",
		Short: "Licence pool, allocations, licence rules and usage engine of an AppDynamics-style controller",
		Long: "Licence pool, allocations, licence rules and usage engine of an AppDynamics-style controller.\n\n" +
			"Every setting is a flag and an environment variable (flags win); see the flags below.",
		Version:       versionLine(),
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE:          func(cmd *cobra.Command, _ []string) error { return serve(cmd.Context(), cfg, e) },
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetArgs(args)
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	flags := config.Bind(root.PersistentFlags())
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if cmd.Annotations["config"] == "none" {
			return nil
		}
		c, err := config.Load(e.lookup, flags)
		if err != nil {
			return err
		}
		cfg = c
		return nil
	}
	serveCmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the HTTP API (the default command)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return serve(cmd.Context(), cfg, e) },
	}
	versionCmd := &cobra.Command{
		Use: "version", Short: "Print the version, commit, build date, Go version and schema version", Args: cobra.NoArgs,
		Annotations: map[string]string{"config": "none"},
		Run:         func(cmd *cobra.Command, _ []string) { fmt.Fprintln(e.stdout, versionLine()) },
	}
	root.AddCommand(serveCmd, migrateCmd(&cfg, e), accountCmd(&cfg, e), userCmd(&cfg, e), apiClientCmd(&cfg, e), licenseCmd(e),
		reportCmd(&cfg, e), healthcheckCmd(&cfg, e), versionCmd)
	// Admin commands act without logging in: their audit entries name the
	// operating-system user who ran them.
	return root.ExecuteContext(audit.WithActor(ctx, cliActor(), ""))
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel)) // validated by config
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// openStore opens and migrates the configured store.
func openStore(ctx context.Context, cfg config.Config, log *slog.Logger) (*store.Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, store.Options{URL: cfg.DatabaseURL, DataDir: cfg.DataDir, Logger: log,
		ReadURL: cfg.DatabaseReadURL, ReadMaxLag: cfg.ReadMaxLag,
		StatementTimeout: max(30*time.Second, 3*cfg.RequestTimeout)})
	if err != nil {
		return nil, err
	}
	v, err := st.Migrate(ctx)
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	log.Debug("schema migrated", "dialect", st.Dialect(), "version", v)
	return st, nil
}

// waitForStore is openStore, tried again while PostgreSQL is unreachable,
// for up to LC_DATABASE_WAIT, with a log line per attempt.
func waitForStore(ctx context.Context, cfg config.Config, log *slog.Logger) (*store.Store, error) {
	if cfg.DatabaseURL == "" || cfg.DatabaseWait <= 0 {
		return openStore(ctx, cfg, log)
	}
	began := time.Now()
	attempt := 0
	policy := backoff.NewExponentialBackOff()
	policy.InitialInterval, policy.MaxInterval = 500*time.Millisecond, 5*time.Second
	wait := untilDeadline{policy, began.Add(cfg.DatabaseWait)}
	st, err := backoff.Retry(ctx, func() (*store.Store, error) {
		attempt++
		st, err := openStore(ctx, cfg, log)
		if err == nil {
			return st, nil
		}
		if !errors.Is(err, fault.ErrUnavailable) {
			return nil, backoff.Permanent(err)
		}
		log.Warn("waiting for PostgreSQL", "attempt", attempt, "waited", time.Since(began).Round(time.Millisecond).String(),
			"database_wait", cfg.DatabaseWait.String(), "error", err)
		return nil, err
	}, backoff.WithBackOff(wait), backoff.WithMaxElapsedTime(0))
	if err != nil && errors.Is(err, fault.ErrUnavailable) {
		return nil, fmt.Errorf("gave up after %d attempts in %s (LC_DATABASE_WAIT %s): %w", attempt,
			time.Since(began).Round(time.Millisecond), cfg.DatabaseWait, err)
	}
	return st, err
}

// untilDeadline is a back-off whose waits end at the deadline: the last
// attempt comes then, not a whole interval before it.
type untilDeadline struct {
	backoff.BackOff
	deadline time.Time
}

func (u untilDeadline) NextBackOff() time.Duration {
	left := time.Until(u.deadline)
	if left <= 0 {
		return backoff.Stop
	}
	return min(u.BackOff.NextBackOff(), left)
}

func serve(ctx context.Context, cfg config.Config, e env) error {
	log := newLogger(cfg, e.stderr)
	// The address is bound before the database is touched: a bad or busy
	// address must not leave a bootstrapped database (and a generated
	// password nobody saw) behind.
	l, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s (LC_HTTP_ADDR): %w", cfg.HTTPAddr, err)
	}
	defer l.Close()
	st, err := waitForStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Error("close store", "error", err)
		}
	}()
	authSvc, err := auth.NewService(ctx, st.Auth(), auth.Options{DefaultAccount: cfg.DefaultAccount})
	if err != nil {
		return err
	}
	verifier, err := licensing.NewVerifier(cfg.LicensePublicKeys)
	if err != nil {
		return err
	}
	licSvc := licensing.NewService(st.Licensing(), verifier, nil)
	warnUntrustedLicenses(ctx, st, licSvc, log)
	created, pw, err := authSvc.Bootstrap(ctx, cfg.BootstrapAdminPassword)
	if err != nil {
		return err
	}
	if created {
		if err := licSvc.InstallTrial(ctx, 1); err != nil {
			return err
		}
		login := fmt.Sprintf("curl -u 'admin@%s:%s' http://localhost%s/controller/api/accounts/myaccount",
			cfg.DefaultAccount, "<LC_BOOTSTRAP_ADMIN_PASSWORD>", portOf(cfg.HTTPAddr))
		attrs := []any{"account", cfg.DefaultAccount, "account_id", 1, "user", "admin", "role", "account-owner"}
		if cfg.BootstrapAdminPassword == "" {
			// Generated: this line is the only place it is ever shown.
			login = strings.Replace(login, "<LC_BOOTSTRAP_ADMIN_PASSWORD>", pw, 1)
			attrs = append(attrs, "generated_password", pw)
		}
		level, msg := slog.LevelInfo, "bootstrapped a new database: account and admin user created"
		if cfg.BootstrapAdminPassword == "" {
			level, msg = slog.LevelWarn, msg+" with a generated password; set LC_BOOTSTRAP_ADMIN_PASSWORD to choose it"
		}
		log.Log(ctx, level, msg, append(attrs, "try", login)...)
		if f, ok := e.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) && cfg.LogFormat == "json" {
			fmt.Fprintf(e.stderr, "\nAccount %s (id 1) created with user admin (account-owner).\nLog in with:\n  %s\n\n", cfg.DefaultAccount, login)
		}
	}

	if addr := cfg.PprofAddr; addr != "" {
		// Opt-in profiling endpoint for operators; never on the API port.
		go func() {
			mux := http.NewServeMux()
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
			log.Warn("pprof listening", "addr", addr, "error", http.ListenAndServe(addr, mux))
		}()
	}
	reg := prometheus.NewRegistry()
	sqlDB, err := st.DB()
	if err != nil {
		return err
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewDBStatsCollector(sqlDB, string(st.Dialect())))
	reg.MustRegister(st.ReplicaCollectors()...)
	eng := engine.New(st.Engine(), licSvc, engine.Options{LeaseTTL: cfg.LeaseTTL, FallbackDelay: cfg.FallbackDelay,
		Registry: reg, Logger: log})
	usageSvc := usage.NewService(st.Engine(), nil)
	failures := jobs.NewFailures(reg, log)
	sampler := engine.NewSampler(st.Series(), licSvc, engine.SamplerOptions{Interval: cfg.UsageSampleInterval,
		Retention: cfg.UsageRetention, Logger: log, Failures: failures})
	seriesSvc := usage.NewSeries(st.Series(), licSvc, cfg.UsageSampleInterval)
	reg.MustRegister(usage.NewForecastCollector(seriesSvc, licSvc, nil, log))
	analytics := usage.NewAnalytics(st.Analytics(), licSvc, nil)
	analytics.SetCacheBytes(cfg.AnalyticsCacheMB << 20)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lc_analytics_cache_bytes",
		Help: "Bytes (estimated) of the event replays analytics keep (LC_ANALYTICS_CACHE_MB)."},
		func() float64 { _, n := analytics.CacheStats(); return float64(n) }))
	reportSvc, err := newReportService(ctx, st, licSvc)
	if err != nil {
		return err
	}
	webhooks := webhook.NewService(st.Webhooks(), nil)
	auditSvc := audit.NewService(st.Audit(), nil)
	leaderJobs := append(webhook.Jobs(webhook.NewDispatcher(st.Webhooks(), licSvc, nil, failures),
		webhook.NewDeliverer(st.Webhooks(), webhook.DelivererOptions{UserAgent: "licensing-controller/" + version, DenyPrivate: cfg.WebhookDenyPrivate})),
		auditRetention(auditSvc, cfg.AuditRetention, log))
	jobsCtx, stopJobs := context.WithCancel(context.WithoutCancel(ctx))
	// Every replica forgets a changed password, role or deleted client
	// within a second of its commit on any replica, and an account's
	// cached revision (what /info asks) as soon as it hears of the change.
	go st.ListenChanges(jobsCtx, log, authSvc.Forget)
	// The licence report counts the instances seen in the last hour.
	go seeInstance(jobsCtx, st, uuid.NewString(), log)
	jobsDone := make(chan struct{})
	go func() {
		defer close(jobsDone)
		// Background jobs run on one instance at a time.
		st.Lead(jobsCtx, leaderKey, 5*time.Second, log, func(ctx context.Context) {
			log.Info("leading background jobs (lease reaper, usage sampler, event retention, analytics rollups, table statistics, lease host copies, webhooks, audit retention)",
				"sample_interval", cfg.UsageSampleInterval.String(), "usage_retention", cfg.UsageRetention.String(), "event_retention", cfg.EventRetention.String())
			var wg sync.WaitGroup
			wg.Go(func() { sampler.Run(ctx) })
			wg.Go(func() { st.KeepStatistics(ctx, 5*time.Second, log) })
			wg.Go(func() { st.KeepLeaseHosts(ctx, 10*time.Second, log) })
			wg.Go(func() { eng.RunEventRetention(ctx, cfg.EventRetention, failures) })
			wg.Go(func() { analytics.RunRollups(ctx, 5*time.Minute, cfg.UsageRetention, failures) })
			wg.Go(func() { jobs.Run(ctx, failures, leaderJobs...) })
			eng.RunReaper(ctx, reaperInterval(cfg.LeaseTTL))
			wg.Wait()
		})
	}()
	defer func() {
		stopJobs()
		<-jobsDone
	}()
	handler := httpapi.New(httpapi.Deps{
		Auth: authSvc, Licensing: licSvc, Engine: eng, Usage: usageSvc, Series: seriesSvc, Ready: st.Ready, Logger: log, Registry: reg,
		Analytics: analytics, Lint: usage.NewLinter(st.Lint(), licSvc, nil), WhatIf: usage.NewWhatIf(st.WhatIf(), licSvc, nil), Report: reportSvc,
		Webhooks: webhooks, Audit: auditSvc,
		MaxBodyBytes: cfg.MaxBodyBytes, Version: version, RequestTimeout: cfg.RequestTimeout, TrustedProxies: cfg.TrustedProxies,
		ReadReplica: readReplica(cfg, st),
	})
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       cfg.RequestTimeout, // a body that arrives slower gets 408
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("serving", "addr", l.Addr().String(), "store", st.Dialect(), "version", version,
		"dashboard", "http://localhost"+portOf(l.Addr().String())+"/ui/",
		"swagger", "http://localhost"+portOf(l.Addr().String())+"/swagger/index.html")
	if e.listening != nil {
		e.listening(l.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: draining in-flight requests", "timeout", cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("stopped")
	return nil
}

// cliActor is who the audit trail says ran an admin command.
func cliActor() audit.Actor {
	a := audit.Actor{Kind: audit.ActorCLI, Name: "licensing-controller"}
	if u, err := user.Current(); err == nil && u.Username != "" {
		a.Name = u.Username
	}
	return a
}

// auditRetention is the job that keeps the audit trail to LC_AUDIT_RETENTION.
func auditRetention(svc *audit.Service, retention time.Duration, log *slog.Logger) jobs.Job {
	return jobs.Job{Name: audit.JobRetention, Interval: time.Hour, Run: func(ctx context.Context) error {
		n, err := svc.Prune(ctx, retention)
		if n > 0 {
			log.InfoContext(ctx, "audit retention pruned entries", "entries", n, "retention", retention.String())
		}
		return err
	}}
}

// leaderKey is the PostgreSQL advisory lock key of the background jobs.
const leaderKey = 0x6c63_6a6f_6273 // "lcjobs"

// reaperInterval keeps expiry at most a second (or a tenth of the TTL) late.
func reaperInterval(ttl time.Duration) time.Duration {
	return min(time.Second, max(ttl/10, 100*time.Millisecond))
}

func portOf(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return ":" + port
}

func migrateCmd(cfg *config.Config, e env) *cobra.Command {
	c := &cobra.Command{
		Use: "migrate", Short: "Apply pending schema migrations and exit", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := newLogger(*cfg, e.stderr)
			st, err := openStore(cmd.Context(), *cfg, log)
			if err != nil {
				return err
			}
			defer st.Close()
			v, err := st.SchemaVersion(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "schema is up to date at version %d\n", v)
			return nil
		},
	}
	c.AddCommand(migrateStatusCmd(cfg, e))
	return c
}

// withAuth opens the store and the auth service for an admin command.
func withAuth(ctx context.Context, cfg config.Config, e env, fn func(*auth.Service) error) error {
	st, err := openStore(ctx, cfg, newLogger(cfg, e.stderr))
	if err != nil {
		return err
	}
	defer st.Close()
	svc, err := auth.NewService(ctx, st.Auth(), auth.Options{DefaultAccount: cfg.DefaultAccount})
	if err != nil {
		return err
	}
	return fn(svc)
}

func accountCmd(cfg *config.Config, e env) *cobra.Command {
	var (
		name string
		id   int64
	)
	create := &cobra.Command{
		Use: "create", Short: "Create an account", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withAuth(cmd.Context(), *cfg, e, func(svc *auth.Service) error {
				a, err := svc.CreateAccount(cmd.Context(), name, id)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "account %s created: id %d, access key %s\n", a.Name, a.ID, a.AccessKey)
				return nil
			})
		},
	}
	create.Flags().StringVar(&name, "name", "", "account name (required)")
	create.Flags().Int64Var(&id, "id", 0, "account id (default: the next free one)")
	_ = create.MarkFlagRequired("name")
	c := &cobra.Command{Use: "account", Short: "Manage accounts"}
	c.AddCommand(create, accountListCmd(cfg, e))
	return c
}

// readPassword reads the password from a file or the first line of stdin.
func readPassword(file string, stdin io.Reader, stderr io.Writer) (string, error) {
	var raw string
	if f, ok := stdin.(*os.File); ok && file == "" && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, "Password: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", fmt.Errorf("read password from the terminal: %w", err)
		}
		raw = string(b)
	} else if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read password file: %w", err)
		}
		raw = string(b)
	} else {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read password from stdin: %w", err)
		}
		raw = line
	}
	pw := strings.TrimRight(raw, "\r\n")
	if pw == "" {
		return "", errors.New("no password given: type it at the prompt, pipe it on stdin or use --password-file")
	}
	return pw, nil
}

func userCmd(cfg *config.Config, e env) *cobra.Command {
	var account, name, role, pwFile string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a user; the password is prompted for on a terminal, read from stdin when piped, or from --password-file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pw, err := readPassword(pwFile, e.stdin, e.stderr)
			if err != nil {
				return err
			}
			return withAuth(cmd.Context(), *cfg, e, func(svc *auth.Service) error {
				a, err := svc.AccountByName(cmd.Context(), account)
				if err != nil {
					return err
				}
				u, err := svc.CreateUser(cmd.Context(), a.ID, name, auth.Role(role), pw)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "user %s@%s created with role %s\n", u.Name, a.Name, u.Role)
				return nil
			})
		},
	}
	create.Flags().StringVar(&account, "account", "", "account name (required)")
	create.Flags().StringVar(&name, "name", "", "user name (required)")
	create.Flags().StringVar(&role, "role", string(auth.RoleLicenseViewer), "account-owner, license-admin, license-viewer or agent-registrar")
	create.Flags().StringVar(&pwFile, "password-file", "", "read the password from this file instead of stdin")
	_ = create.MarkFlagRequired("account")
	_ = create.MarkFlagRequired("name")
	c := &cobra.Command{Use: "user", Short: "Manage users"}
	c.AddCommand(create)
	c.AddCommand(userAdminCmds(cfg, e)...)
	return c
}

func apiClientCmd(cfg *config.Config, e env) *cobra.Command {
	var (
		account, name, role, description string
		lifetime                         time.Duration
	)
	create := &cobra.Command{
		Use: "create", Short: "Create an OAuth API client and print its secret (shown once)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withAuth(cmd.Context(), *cfg, e, func(svc *auth.Service) error {
				a, err := svc.AccountByName(cmd.Context(), account)
				if err != nil {
					return err
				}
				c, secret, err := svc.CreateAPIClient(cmd.Context(), a.ID, name, description, auth.Role(role), lifetime)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "client_id=%s@%s\nclient_secret=%s\n", c.Name, a.Name, secret)
				return nil
			})
		},
	}
	create.Flags().StringVar(&account, "account", "", "account name (required)")
	create.Flags().StringVar(&name, "name", "", "client name (required)")
	create.Flags().StringVar(&role, "role", string(auth.RoleAgentRegistrar), "account-owner, license-admin, license-viewer or agent-registrar")
	create.Flags().StringVar(&description, "description", "", "free text")
	create.Flags().DurationVar(&lifetime, "token-lifetime", 5*time.Minute, "lifetime of issued tokens (max 720h)")
	_ = create.MarkFlagRequired("account")
	_ = create.MarkFlagRequired("name")
	c := &cobra.Command{Use: "api-client", Short: "Manage OAuth API clients"}
	c.AddCommand(create)
	c.AddCommand(apiClientAdminCmds(cfg, e)...)
	return c
}

// warnUntrustedLicenses says at start which uploaded licences no trusted
// key verifies (a restart without LC_LICENSE_PUBLIC_KEYS, a rotated key):
// silently, their accounts would fall back to the trial or to nothing.
func warnUntrustedLicenses(ctx context.Context, st *store.Store, lic *licensing.Service, log *slog.Logger) {
	ids, err := st.Series().AccountIDs(ctx)
	if err != nil {
		log.Warn("could not check the stored licences' signatures", "error", err)
		return
	}
	for _, id := range ids {
		ls, err := lic.UntrustedLicenses(ctx, id)
		if err != nil {
			log.Warn("could not check the stored licences' signatures", "account_id", id, "error", err)
			continue
		}
		for _, l := range ls {
			log.Warn("a stored licence is not trusted and counts for nothing: set LC_LICENSE_PUBLIC_KEYS to the key that signed it",
				"account_id", id, "license", l.ID, "license_id", l.Payload.LicenseID)
		}
	}
}

// readReplica routes the read-only endpoints to LC_DATABASE_READ_URL, when
// set: a writer reads the primary for the replica's largest lag, plus how
// old the lag can be, after its write.
func readReplica(cfg config.Config, st *store.Store) httpapi.ReadReplica {
	if cfg.DatabaseReadURL == "" {
		return httpapi.ReadReplica{}
	}
	return httpapi.ReadReplica{Mark: st.ReadReplica, Window: cfg.ReadMaxLag + store.ReplicaStaleness}
}
