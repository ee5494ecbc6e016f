package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lcorp/licensing-controller/internal/config"
	"github.com/lcorp/licensing-controller/internal/licensing"
	"github.com/lcorp/licensing-controller/internal/report"
	"github.com/lcorp/licensing-controller/internal/store"
)

// newReportService builds the licence report on st.
func newReportService(ctx context.Context, st *store.Store, lic *licensing.Service) (*report.Service, error) {
	v, err := st.SchemaVersion(ctx)
	if err != nil {
		return nil, err
	}
	deployment := "embedded"
	if st.Dialect() == store.Postgres {
		deployment = "postgres"
	}
	return report.New(st.Report(), lic, report.Options{Version: version,
		DBVersion: fmt.Sprintf("%s schema %d", st.Dialect(), v), Deployment: deployment}), nil
}

// seeInstance records this instance every minute until ctx ends.
func seeInstance(ctx context.Context, st *store.Store, id string, log *slog.Logger) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		if err := st.SeeInstance(ctx, id, time.Now()); err != nil && ctx.Err() == nil {
			log.Debug("could not record this instance", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// reportCmd verifies reports offline and exports one from the database.
func reportCmd(cfg *config.Config, e env) *cobra.Command {
	var pub string
	verify := &cobra.Command{
		Use:   "verify FILE",
		Short: "Check a licence report (report.json or the tar): checksum and signature; exit 0 when OK, 1 naming the failed check",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("read %s: %w", args[0], err)
			}
			var key ed25519.PublicKey
			if pub != "" {
				text := pub
				if b, err := os.ReadFile(pub); err == nil {
					text = string(b)
				}
				k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(text))
				if err != nil || len(k) != ed25519.PublicKeySize {
					return errors.New("--pub: neither a readable key file nor a base64 Ed25519 public key")
				}
				key = k
			}
			if err := report.Verify(raw, key); err != nil {
				return fmt.Errorf("report verify: %w", err)
			}
			fmt.Fprintln(e.stdout, "OK: checksum and signature verify")
			return nil
		},
	}
	verify.Flags().StringVar(&pub, "pub", "", "the installation's public key (base64 or a file) the report must be signed with")

	var account int64
	export := &cobra.Command{
		Use:   "export",
		Short: "Print the licence report of an account (as GET …/report answers it)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			log := newLogger(*cfg, e.stderr)
			st, err := openStore(ctx, *cfg, log)
			if err != nil {
				return err
			}
			defer st.Close()
			verifier, err := licensing.NewVerifier(cfg.LicensePublicKeys)
			if err != nil {
				return err
			}
			svc, err := newReportService(ctx, st, licensing.NewService(st.Licensing(), verifier, nil))
			if err != nil {
				return err
			}
			r, err := svc.Build(ctx, account)
			if err != nil {
				return err
			}
			b, err := json.MarshalIndent(r, "", "  ")
			if err != nil {
				return fmt.Errorf("encode report: %w", err)
			}
			_, err = fmt.Fprintln(e.stdout, string(b))
			return err
		},
	}
	export.Flags().Int64Var(&account, "account", 1, "account id")
	c := &cobra.Command{Use: "report", Short: "Licence reports: verify one offline, export one"}
	c.AddCommand(verify, export)
	return c
}
