package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lcorp/licensing-controller/internal/auth"
	"github.com/lcorp/licensing-controller/internal/config"
	"github.com/lcorp/licensing-controller/internal/store"
)

// withStore opens the store and the auth service for an admin command.
func withStore(ctx context.Context, cfg config.Config, e env, fn func(*store.Store, *auth.Service) error) error {
	st, err := openStore(ctx, cfg, newLogger(cfg, e.stderr))
	if err != nil {
		return err
	}
	defer st.Close()
	svc, err := auth.NewService(ctx, st.Auth(), auth.Options{DefaultAccount: cfg.DefaultAccount})
	if err != nil {
		return err
	}
	return fn(st, svc)
}

func accountListCmd(cfg *config.Config, e env) *cobra.Command {
	return &cobra.Command{
		Use: "list", Short: "List the accounts", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd.Context(), *cfg, e, func(st *store.Store, svc *auth.Service) error {
				ids, err := st.Series().AccountIDs(cmd.Context())
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "ID\tNAME\tGLOBAL ACCOUNT NAME\tCREATED")
				for _, id := range ids {
					a, err := svc.Account(cmd.Context(), id)
					if err != nil {
						return err
					}
					fmt.Fprintf(w, "%d\t%s\t%s\t%s\n", a.ID, a.Name, a.GlobalAccountName(), a.CreatedAt.UTC().Format(time.RFC3339))
				}
				return w.Flush()
			})
		},
	}
}

// accountFlag adds the --account flag that names the account of a command.
func accountFlag(c *cobra.Command, dst *string) {
	c.Flags().StringVar(dst, "account", "", "account name (required)")
	_ = c.MarkFlagRequired("account")
}

func userAdminCmds(cfg *config.Config, e env) []*cobra.Command {
	var account, name, pwFile string
	list := &cobra.Command{
		Use: "list", Short: "List an account's users", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withAuth(cmd.Context(), *cfg, e, func(svc *auth.Service) error {
				a, err := svc.AccountByName(cmd.Context(), account)
				if err != nil {
					return err
				}
				us, err := svc.Users(cmd.Context(), a.ID)
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "NAME\tROLE\tUPDATED")
				for _, u := range us {
					fmt.Fprintf(w, "%s\t%s\t%s\n", u.Name, u.Role, u.UpdatedAt.UTC().Format(time.RFC3339))
				}
				return w.Flush()
			})
		},
	}
	accountFlag(list, &account)
	del := &cobra.Command{
		Use: "delete", Short: "Delete a user (its cached logins are forgotten on every replica)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withAuth(cmd.Context(), *cfg, e, func(svc *auth.Service) error {
				a, err := svc.AccountByName(cmd.Context(), account)
				if err != nil {
					return err
				}
				if err := svc.DeleteUser(cmd.Context(), a.ID, name); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "user %s@%s deleted\n", name, a.Name)
				return nil
			})
		},
	}
	passwd := &cobra.Command{
		Use: "passwd", Short: "Set a user's password (prompted for on a terminal, from stdin when piped, or --password-file); the old one stops working", Args: cobra.NoArgs,
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
				if _, err := svc.UpdateUser(cmd.Context(), a.ID, name, "", pw); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "password of %s@%s changed\n", name, a.Name)
				return nil
			})
		},
	}
	for _, c := range []*cobra.Command{del, passwd} {
		accountFlag(c, &account)
		c.Flags().StringVar(&name, "name", "", "user name (required)")
		_ = c.MarkFlagRequired("name")
	}
	passwd.Flags().StringVar(&pwFile, "password-file", "", "read the password from this file instead of stdin")
	return []*cobra.Command{list, del, passwd}
}

func apiClientAdminCmds(cfg *config.Config, e env) []*cobra.Command {
	var account, name string
	list := &cobra.Command{
		Use: "list", Short: "List an account's API clients", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withAuth(cmd.Context(), *cfg, e, func(svc *auth.Service) error {
				a, err := svc.AccountByName(cmd.Context(), account)
				if err != nil {
					return err
				}
				cs, err := svc.APIClients(cmd.Context(), a.ID)
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "CLIENT ID\tROLE\tTOKEN LIFETIME\tDESCRIPTION")
				for _, c := range cs {
					fmt.Fprintf(w, "%s@%s\t%s\t%s\t%s\n", c.Name, a.Name, c.Role, c.TokenLifetime, c.Description)
				}
				return w.Flush()
			})
		},
	}
	accountFlag(list, &account)
	del := &cobra.Command{
		Use: "delete", Short: "Delete an API client; its tokens stop working on every replica", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withAuth(cmd.Context(), *cfg, e, func(svc *auth.Service) error {
				a, err := svc.AccountByName(cmd.Context(), account)
				if err != nil {
					return err
				}
				if err := svc.DeleteAPIClient(cmd.Context(), a.ID, name); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "API client %s@%s deleted\n", name, a.Name)
				return nil
			})
		},
	}
	rotate := &cobra.Command{
		Use: "rotate", Short: "Give an API client a new secret (printed once); the old secret and its tokens stop working", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withAuth(cmd.Context(), *cfg, e, func(svc *auth.Service) error {
				a, err := svc.AccountByName(cmd.Context(), account)
				if err != nil {
					return err
				}
				c, secret, err := svc.RotateAPIClient(cmd.Context(), a.ID, name)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "client_id=%s@%s\nclient_secret=%s\n", c.Name, a.Name, secret)
				return nil
			})
		},
	}
	for _, c := range []*cobra.Command{del, rotate} {
		accountFlag(c, &account)
		c.Flags().StringVar(&name, "name", "", "client name (required)")
		_ = c.MarkFlagRequired("name")
	}
	return []*cobra.Command{list, del, rotate}
}

func migrateStatusCmd(cfg *config.Config, e env) *cobra.Command {
	return &cobra.Command{
		Use: "status", Short: "List the schema migrations, applied and pending", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := newLogger(*cfg, e.stderr)
			if err := cfg.Validate(); err != nil {
				return err
			}
			st, err := store.Open(cmd.Context(), store.Options{URL: cfg.DatabaseURL, DataDir: cfg.DataDir, Logger: log})
			if err != nil {
				return err
			}
			defer st.Close()
			ms, err := st.MigrationStatus(cmd.Context())
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "VERSION\tSTATE\tAPPLIED AT\tMIGRATION")
			for _, m := range ms {
				state, at := "pending", ""
				if m.Applied {
					state, at = "applied", m.AppliedAt.Format(time.RFC3339)
				}
				fmt.Fprintf(w, "%d\t%s\t%s\t%s\n", m.Version, state, at, m.Name)
			}
			return w.Flush()
		},
	}
}

// healthcheckCmd is the container health check: GET /readyz of the
// configured address, exit 0 when ready, 1 otherwise.
func healthcheckCmd(cfg *config.Config, e env) *cobra.Command {
	return &cobra.Command{
		Use: "healthcheck", Short: "Exit 0 when the service at LC_HTTP_ADDR answers /readyz with 200, else 1", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			host, port, err := net.SplitHostPort(cfg.HTTPAddr)
			if err != nil {
				return fmt.Errorf("LC_HTTP_ADDR %q: %w", cfg.HTTPAddr, err)
			}
			if host == "" || host == "0.0.0.0" || host == "::" {
				host = "127.0.0.1"
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 3*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/readyz", nil)
			if err != nil {
				return err
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("not healthy: %w", err)
			}
			defer res.Body.Close()
			if res.StatusCode != http.StatusOK {
				return fmt.Errorf("not ready: /readyz answered %d", res.StatusCode)
			}
			fmt.Fprintln(e.stdout, "ready")
			return nil
		},
	}
}
