package store

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// The engine's tables grow from nothing to hundreds of thousands of rows
// within a minute when an estate comes up, and PostgreSQL plans against
// the statistics of its last ANALYZE. Autovacuum looks at a database at
// most once a minute (autovacuum_naptime), so until then a table that was
// empty at its last ANALYZE, or never analysed, is planned as tiny: seen,
// a batch heartbeat of 1 000 ids nested over every lease of the account
// (40 s instead of 15 ms). KeepStatistics analyses such tables as soon as
// their size has moved.

// staleTables lists the tables whose live row count moved by more than a
// fifth (and 1 000 rows) since their statistics were taken, or that were
// never analysed and hold 1 000 rows.
const staleTables = `SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
	WHERE s.schemaname = current_schema() AND s.n_live_tup >= 1000
	AND (c.reltuples < 0 OR abs(s.n_live_tup - c.reltuples) > 1000 + 0.2 * c.reltuples)`

// AnalyzeStale analyses the tables whose statistics no longer describe
// their size and returns their names. The embedded store has nothing to do.
func (s *Store) AnalyzeStale(ctx context.Context) ([]string, error) {
	if s.dialect != Postgres {
		return nil, nil
	}
	var tables []string
	if err := s.conn(ctx).Raw(staleTables).Scan(&tables).Error; err != nil {
		return nil, fmt.Errorf("find tables with stale statistics: %w", translate(err))
	}
	for _, t := range tables {
		if err := s.conn(ctx).Exec(`ANALYZE "` + t + `"`).Error; err != nil {
			return nil, fmt.Errorf("analyze %s: %w", t, translate(err))
		}
	}
	return tables, nil
}

// KeepStatistics runs AnalyzeStale every interval until ctx ends. Run it on
// the leader only.
func (s *Store) KeepStatistics(ctx context.Context, interval time.Duration, log *slog.Logger) {
	if s.dialect != Postgres {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		tables, err := s.AnalyzeStale(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("statistics", "error", err)
		case len(tables) > 0:
			log.Debug("analysed tables whose size moved", "tables", tables)
		}
	}
}
