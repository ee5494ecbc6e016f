package store

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// ListenCredentialChanges calls fn with the payload of every credential
// change that any replica commits (NotifyCredentialChange), until ctx ends.
// It listens on a dedicated connection; after each (re)connection it calls
// fn("*") first, since changes may have been missed meanwhile. The
// embedded store has a single process: it returns at once.
func (s *Store) ListenCredentialChanges(ctx context.Context, log *slog.Logger, fn func(payload string)) {
	if s.dialect != Postgres {
		return
	}
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, fn)
		if ctx.Err() != nil {
			return
		}
		log.Warn("credential change notifications interrupted; listening again", "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (s *Store) listenOnce(ctx context.Context, fn func(string)) error {
	conn, err := pgx.ConnectConfig(ctx, s.pgcfg.Copy())
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{CredentialChannel}.Sanitize()); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	fn("*")
	for {
		// A half-open connection (a silent failover, a dropped NAT entry)
		// would wait forever: wake up every 30 s and ping.
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			fn(n.Payload)
		case ctx.Err() == nil && wctx.Err() != nil:
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return fmt.Errorf("ping the listening connection: %w", err)
			}
		default:
			return fmt.Errorf("wait for a notification: %w", err)
		}
	}
}
