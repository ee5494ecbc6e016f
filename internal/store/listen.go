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
// embedded store polls credential_changes every CredentialPoll instead.
func (s *Store) ListenCredentialChanges(ctx context.Context, log *slog.Logger, fn func(payload string)) {
	if s.dialect != Postgres {
		s.pollCredentialChanges(ctx, log, fn)
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

// CredentialPoll is how often the embedded store looks for credential
// changes other processes (the CLI) made.
const CredentialPoll = 250 * time.Millisecond

// pollCredentialChanges calls fn with each row of credential_changes added
// since it started, and deletes rows older than a minute now and then.
func (s *Store) pollCredentialChanges(ctx context.Context, log *slog.Logger, fn func(string)) {
	t := time.NewTicker(CredentialPoll)
	defer t.Stop()
	var last int64
	for started := false; !started; {
		err := s.conn(ctx).Raw("SELECT COALESCE(MAX(id), 0) FROM credential_changes").Scan(&last).Error
		if started = err == nil; !started {
			log.Warn("credential changes: cannot read the table yet; trying again", "error", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(5 * time.Second):
			}
		}
	}
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var rows []struct {
			ID      int64
			Payload string
		}
		if err := s.conn(ctx).Raw("SELECT id, payload FROM credential_changes WHERE id > ? ORDER BY id", last).Scan(&rows).Error; err != nil {
			if ctx.Err() == nil {
				log.Warn("credential changes: poll failed", "error", err)
			}
			continue
		}
		for _, r := range rows {
			fn(r.Payload)
			last = r.ID
		}
		if i%240 == 0 { // about a minute
			// Only rows this process has read: a stalled poll misses none.
			if err := s.conn(ctx).Exec("DELETE FROM credential_changes WHERE at < ? AND id <= ?", time.Now().Add(-time.Minute).Unix(), last).Error; err != nil && ctx.Err() == nil {
				log.Debug("credential changes: prune failed", "error", err)
			}
		}
	}
}
