package store

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"
)

// The embedded store's WAL is copied back into the database (a
// checkpoint) by a connection of its own, in the background, rather than
// by whichever request's commit crosses SQLite's threshold: that commit
// paid for copying the pages and the fsync (a tenth of a single release's
// CPU, all of it on the request's latency). The writing connection keeps
// an automatic checkpoint at a far larger WAL as a backstop.
const (
	// checkpointEvery is how often the checkpointer runs. A PASSIVE
	// checkpoint with nothing to copy only reads the WAL index.
	checkpointEvery = 100 * time.Millisecond
	// writerAutoCheckpoint is the WAL size (pages) at which the writing
	// connection checkpoints itself, should the checkpointer fall behind.
	writerAutoCheckpoint = 10000
)

type sqliteCheckpointer struct {
	db   *sql.DB
	stop context.CancelFunc
	done chan struct{}
}

// startCheckpointer opens its own connection to the database at dsn and
// checkpoints every interval until closed.
func startCheckpointer(dsn string, every time.Duration, log *slog.Logger) (*sqliteCheckpointer, error) {
	conn, err := newSQLiteConnector(dsn)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(1)
	ctx, stop := context.WithCancel(context.Background())
	if err := db.PingContext(ctx); err != nil {
		stop()
		_ = db.Close()
		return nil, fmt.Errorf("open the checkpointer's connection: %w", err)
	}
	c := &sqliteCheckpointer{db: db, stop: stop, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		t := time.NewTicker(every)
		defer t.Stop()
		failing := false
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			err := c.checkpoint(ctx)
			switch {
			case err != nil && ctx.Err() == nil && !failing:
				log.Warn("embedded store: background WAL checkpoint failed; commits checkpoint past the backstop", "err", err)
				failing = true
			case err == nil && failing:
				log.Info("embedded store: background WAL checkpoints work again")
				failing = false
			}
		}
	}()
	return c, nil
}

// checkpoint copies what it can of the WAL into the database without
// waiting for readers or the writer (PASSIVE).
func (c *sqliteCheckpointer) checkpoint(ctx context.Context) error {
	var busy, frames, done int
	if err := c.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &done); err != nil {
		return fmt.Errorf("wal checkpoint: %w", err)
	}
	return nil
}

func (c *sqliteCheckpointer) Close() error {
	c.stop()
	<-c.done
	return c.db.Close()
}
