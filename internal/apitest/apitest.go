// Package apitest runs the whole HTTP API in the process on a store, for
// the end-to-end tests and runnable examples of pkg/client and for the
// load tools: the same services and router as `licensing-controller
// serve`, without the background jobs (tests drive those themselves).
package apitest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/lcorp/licensing-controller/internal/audit"
	"github.com/lcorp/licensing-controller/internal/auth"
	"github.com/lcorp/licensing-controller/internal/engine"
	"github.com/lcorp/licensing-controller/internal/httpapi"
	"github.com/lcorp/licensing-controller/internal/licensing"
	"github.com/lcorp/licensing-controller/internal/store"
	"github.com/lcorp/licensing-controller/internal/usage"
	"github.com/lcorp/licensing-controller/internal/webhook"
)

// AdminPassword is the password of admin@customer1 (account 1).
const AdminPassword = "admin-password"

// Server is the API on an httptest.Server.
type Server struct {
	*httptest.Server
	Store  *store.Store
	Engine *engine.Engine
	Auth   *auth.Service
}

// Options adjust a Server.
type Options struct {
	// LeaseTTL of the engine (default 5 min).
	LeaseTTL time.Duration
}

// Start bootstraps st (account customer1 with admin and the trial
// licence) and serves the API on it.
func Start(ctx context.Context, st *store.Store, opt Options) (*Server, error) {
	authSvc, err := auth.NewService(ctx, st.Auth(), auth.Options{BcryptCost: bcrypt.MinCost})
	if err != nil {
		return nil, err
	}
	verifier, err := licensing.NewVerifier(nil)
	if err != nil {
		return nil, err
	}
	lic := licensing.NewService(st.Licensing(), verifier, nil)
	created, _, err := authSvc.Bootstrap(ctx, AdminPassword)
	if err != nil {
		return nil, err
	}
	if created {
		if err := lic.InstallTrial(ctx, 1); err != nil {
			return nil, err
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("LC_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	reg := prometheus.NewRegistry()
	eng := engine.New(st.Engine(), lic, engine.Options{LeaseTTL: opt.LeaseTTL, Registry: reg, Logger: log})
	h := httpapi.New(httpapi.Deps{Auth: authSvc, Licensing: lic, Engine: eng, Usage: usage.NewService(st.Engine(), nil),
		Series: usage.NewSeries(st.Series(), lic, 5*time.Minute), Analytics: usage.NewAnalytics(st.Analytics(), lic, nil), Lint: usage.NewLinter(st.Lint(), lic, nil), WhatIf: usage.NewWhatIf(st.WhatIf(), lic, nil),
		Webhooks: webhook.NewService(st.Webhooks(), nil), Audit: audit.NewService(st.Audit(), nil),
		Ready: st.Ready, Logger: log, Registry: reg, Version: "test"})
	return &Server{Server: httptest.NewServer(h), Store: st, Engine: eng, Auth: authSvc}, nil
}

// StartSQLite serves the API on a fresh embedded store in dir; stop closes
// both.
func StartSQLite(ctx context.Context, dir string) (srv *Server, stop func(), err error) {
	st, err := store.Open(ctx, store.Options{DataDir: dir})
	if err != nil {
		return nil, nil, err
	}
	if _, err := st.Migrate(ctx); err != nil {
		_ = st.Close()
		return nil, nil, fmt.Errorf("migrate: %w", err)
	}
	srv, err = Start(ctx, st, Options{})
	if err != nil {
		_ = st.Close()
		return nil, nil, err
	}
	return srv, func() { srv.Close(); _ = st.Close() }, nil
}
