package store

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// ListenChanges hears what any process commits, until ctx ends:
//   - every credential change (NotifyCredentialChange): it calls
//     onCredential with the payload, and onCredential("*") once it hears
//     changes and after each reconnection, since changes may have been
//     missed meanwhile;
//   - every change of an account's revision (the accounts trigger of
//     migration 27), which keeps the store's revision cache (revisions.go):
//     the cache is in use only while this listens.
//
// On PostgreSQL it listens on a dedicated connection; the embedded store
// polls credential_changes every CredentialPoll instead.
func (s *Store) ListenChanges(ctx context.Context, log *slog.Logger, onCredential func(payload string)) {
	defer s.revs.reset(false)
	if s.dialect != Postgres {
		s.pollCredentialChanges(ctx, log, onCredential)
		return
	}
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, onCredential)
		s.revs.reset(false)
		if ctx.Err() != nil {
			return
		}
		log.Warn("change notifications interrupted; listening again", "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// AccountRevisionChannel is the PostgreSQL notification channel of account
// revisions: the accounts trigger sends the account's id (migration 27).
const AccountRevisionChannel = "lc_account_revisions"

func (s *Store) listenOnce(ctx context.Context, fn func(string)) error {
	conn, err := pgx.ConnectConfig(ctx, s.pgcfg.Copy())
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, ch := range []string{CredentialChannel, AccountRevisionChannel} {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return fmt.Errorf("listen on %s: %w", ch, err)
		}
	}
	s.revs.reset(true)
	fn("*")
	for {
		// A half-open connection (a silent failover, a dropped NAT entry)
		// would wait forever: wake up every 30 s and ping.
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil && n.Channel == AccountRevisionChannel:
			s.revs.heard(n.Payload)
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

// CredentialPoll is how often the embedded store looks for credential and
// revision changes other processes (the CLI) made.
const CredentialPoll = 250 * time.Millisecond

// pollCredentialChanges calls fn with each row of credential_changes added
// since it started, and deletes rows older than a minute now and then.
func (s *Store) pollCredentialChanges(ctx context.Context, log *slog.Logger, fn func(string)) {
	t := time.NewTicker(CredentialPoll)
	defer t.Stop()
	var last int64
	for started := false; !started; {
		err := s.conn(ctx).Raw("SELECT COALESCE(MAX(id), 0) FROM credential_changes").Scan(&last).Error
		if started = err == nil; started {
			s.revs.reset(true)
			fn("*")
		} else {
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
			// Changes go unheard until a poll succeeds again.
			s.revs.reset(false)
			continue
		}
		for _, r := range rows {
			if strings.HasPrefix(r.Payload, accountChangePrefix) {
				s.revs.heard(r.Payload)
			} else {
				fn(r.Payload)
			}
			last = r.ID
		}
		if !s.revs.isLive() {
			s.revs.reset(true)
		}
		if i%240 == 0 { // about a minute
			// Only rows this process has read: a stalled poll misses none.
			if err := s.conn(ctx).Exec("DELETE FROM credential_changes WHERE at < ? AND id <= ?", time.Now().Add(-time.Minute).Unix(), last).Error; err != nil && ctx.Err() == nil {
				log.Debug("credential changes: prune failed", "error", err)
			}
		}
	}
}
