package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Lead runs fn while this instance holds the leadership named by key, and
// keeps trying to become leader until ctx ends. On PostgreSQL leadership is
// a session advisory lock on a dedicated connection: when the leader dies
// its session ends and a standby takes over within retry. The embedded
// store has one process: it always leads.
func (s *Store) Lead(ctx context.Context, key int64, retry time.Duration, log *slog.Logger, fn func(ctx context.Context)) {
	if s.dialect != Postgres {
		fn(ctx)
		return
	}
	for ctx.Err() == nil {
		if err := s.leadOnce(ctx, key, retry, fn); err != nil && ctx.Err() == nil {
			log.Warn("leader election", "key", key, "error", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(retry):
		}
	}
}

func (s *Store) leadOnce(ctx context.Context, key int64, check time.Duration, fn func(ctx context.Context)) (err error) {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("leader connection: %w", err)
	}
	defer conn.Close()
	// Only a writable primary leads: on a standby every job's write would
	// fail, and the primary's instances could not lead meanwhile.
	var ro bool
	if err := conn.QueryRowContext(ctx, readOnlyQuery).Scan(&ro); err != nil {
		return fmt.Errorf("check that the database is writable: %w", err)
	}
	if ro {
		return nil
	}
	var got bool
	if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&got); err != nil {
		// The lock may have been taken before the error: end the session.
		return errors.Join(fmt.Errorf("try advisory lock %d: %w", key, err), discard(conn))
	}
	if !got {
		return nil // another instance leads
	}
	// The lock belongs to this session. Whatever ends the leadership, the
	// session ends with it: a connection returned to the pool would keep
	// the lock, and then no instance (this one included, on another
	// connection) could lead until the pool closed it.
	defer func() { err = errors.Join(err, discard(conn)) }()
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(lctx)
	}()
	t := time.NewTicker(check)
	defer t.Stop()
	for {
		select {
		case <-done:
			return nil
		case <-t.C:
			// Leadership lives as long as the session: lose it, stop. A
			// primary that turned read-only gives it up too.
			if err := conn.QueryRowContext(ctx, readOnlyQuery).Scan(&ro); err != nil || ro {
				cancel()
				<-done
				if err == nil {
					return errors.New("the database turned read-only: leadership given up")
				}
				return fmt.Errorf("leader connection lost: %w", err)
			}
		}
	}
}

// discard closes the session of conn instead of returning it to the pool,
// which releases the session's advisory locks on the server.
func discard(conn *sql.Conn) error {
	err := conn.Raw(func(any) error { return driver.ErrBadConn })
	if !errors.Is(err, driver.ErrBadConn) && !errors.Is(err, sql.ErrConnDone) {
		return fmt.Errorf("close the leader connection: %w", err)
	}
	return nil
}
