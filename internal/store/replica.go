package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/prometheus/client_golang/prometheus"
)

// Read replicas (LC_DATABASE_READ_URL): reads of the endpoints that only
// read go to a PostgreSQL streaming standby while it is no more than
// LC_READ_MAX_LAG behind the primary, and to the primary otherwise. Only a
// request's context marked by ReadReplica is routed, and of it only
// statements that only read, outside a transaction: writes, transactions
// and everything else stay on the primary. Whether the replica is fresh
// enough is decided once, when the context is marked, so that a request
// does not read part of its answer from one database and part from the
// other (but after a failure of the replica, when its reads go on on the
// primary).

type replicaKey struct{}

// ReadReplica returns ctx marked so that its reads outside a transaction
// are served by the read replica, when there is one and it is fresh
// enough now; ctx otherwise.
func (s *Store) ReadReplica(ctx context.Context) context.Context {
	if s.replica == nil || !s.replica.fresh() {
		if s.replica != nil {
			s.replica.reads[readPrimary].Add(1)
		}
		return ctx
	}
	s.replica.reads[readReplica].Add(1)
	return context.WithValue(ctx, replicaKey{}, true)
}

func onReplica(ctx context.Context) bool {
	ok, _ := ctx.Value(replicaKey{}).(bool)
	return ok
}

// replica is the standby's pool and what its monitor last saw.
type replica struct {
	db      *sql.DB
	primary *sql.DB
	maxLag  time.Duration
	log     *slog.Logger

	usable atomic.Bool
	lastOK atomic.Int64 // Unix nanoseconds of the last check that found it fresh
	lag    atomic.Int64 // nanoseconds; -1 while unknown (down, not a standby)
	reads  [2]atomic.Int64
	again  atomic.Int64 // statements run again on the primary after failing on the replica
}

// Indexes of replica.reads.
const (
	readPrimary = iota
	readReplica
)

// ReplicaCheckInterval is how often the replica's lag is measured, and
// replicaCheckTimeout how long one measurement may take.
const (
	ReplicaCheckInterval = time.Second
	replicaCheckTimeout  = 2 * time.Second
)

// ReplicaStaleness is how much older than LC_READ_MAX_LAG the replica's
// state can be when a request reads it: the lag is as of the last good
// check, which is at most an interval and a check's timeout old.
const ReplicaStaleness = ReplicaCheckInterval + replicaCheckTimeout

// fresh reports whether the last check found the replica fresh enough,
// and is recent: a monitor that stalls does not keep it in use.
func (r *replica) fresh() bool {
	return r.usable.Load() && time.Since(time.Unix(0, r.lastOK.Load())) <= ReplicaStaleness
}

// use reports whether a read statement in ctx goes to the replica.
func (r *replica) use(ctx context.Context, query string) bool {
	return r != nil && onReplica(ctx) && isRead(query)
}

// failed reports whether a statement that failed on the replica should
// run again on the primary. A replica that is unreachable is taken out of
// use until the monitor finds it back; one that cancelled the statement
// (a conflict with recovery) or refused it stays in use.
func (r *replica) failed(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	lost := isConnLost(err) || isUnavailable(err)
	if !lost && !isReadOnly(err) && !isTransient(err) {
		return false
	}
	if lost && r.usable.Swap(false) {
		r.log.Warn("read replica failed: reads go to the primary", "error", err)
	}
	r.again.Add(1)
	return true
}

// check measures the replica's lag: none when it has replayed the WAL the
// primary had written just before (pg_current_wal_lsn), else the age of
// the last transaction it replayed (pg_last_xact_replay_timestamp), which
// overstates the lag after an idle spell but never understates it.
func (r *replica) check(ctx context.Context) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, replicaCheckTimeout)
	defer cancel()
	var primaryLSN sql.NullString
	if err := r.primary.QueryRowContext(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&primaryLSN); err != nil {
		primaryLSN = sql.NullString{} // the primary is away: judge by the replay time alone
	}
	var (
		standby bool
		caught  sql.NullBool
		age     sql.NullFloat64
	)
	err := r.db.QueryRowContext(ctx, `SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn() >= $1::pg_lsn,
		EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8`, primaryLSN).Scan(&standby, &caught, &age)
	switch {
	case err != nil:
		return -1, fmt.Errorf("measure read replica lag: %w", translate(err))
	case !standby:
		return -1, errors.New("the read replica is not a standby (pg_is_in_recovery is false): reads go to the primary")
	case caught.Valid && caught.Bool:
		return 0, nil
	case !age.Valid:
		return -1, errors.New("the read replica has replayed no transaction yet")
	}
	return time.Duration(max(age.Float64, 0) * float64(time.Second)), nil
}

// monitor measures the lag every ReplicaCheckInterval until ctx ends.
func (r *replica) monitor(ctx context.Context) {
	t := time.NewTicker(ReplicaCheckInterval)
	defer t.Stop()
	var lastErr string
	for {
		lag, err := r.check(ctx)
		if ctx.Err() != nil {
			return
		}
		r.lag.Store(int64(lag))
		ok := err == nil && lag <= r.maxLag
		if ok {
			r.lastOK.Store(time.Now().UnixNano())
		}
		if was := r.usable.Swap(ok); was != ok {
			switch {
			case ok:
				r.log.Info("read replica in use", "lag", lag.String())
			case err != nil:
				r.log.Warn("read replica out of use: reads go to the primary", "error", err)
			default:
				r.log.Warn("read replica out of use: it lags behind the primary", "lag", lag.String(), "max_lag", r.maxLag.String())
			}
		} else if err != nil && err.Error() != lastErr {
			r.log.Debug("read replica check", "error", err)
		}
		lastErr = ""
		if err != nil {
			lastErr = err.Error()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// openReplica opens the standby's pool and starts its monitor, which
// stops with ctx. The replica is in use from its first good check on.
func openReplica(ctx context.Context, opt Options, primary *sql.DB, maxOpen int) (*replica, error) {
	cfg, err := PgxConfig(opt.ReadURL)
	if err != nil {
		return nil, fmt.Errorf("read replica (LC_DATABASE_READ_URL): %w", err)
	}
	setStatementTimeout(cfg, opt.StatementTimeout)
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(maxOpen)
	db.SetMaxIdleConns(maxOpen)
	db.SetConnMaxLifetime(30 * time.Minute)
	db.SetConnMaxIdleTime(5 * time.Minute)
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	maxLag := opt.ReadMaxLag
	if maxLag <= 0 {
		maxLag = 5 * time.Second
	}
	r := &replica{db: db, primary: primary, maxLag: maxLag, log: log}
	r.lag.Store(-1)
	go r.monitor(ctx)
	return r, nil
}

// ReplicaCollectors are the read replica's metrics: its lag, whether it is
// in use, and the reads of the routed endpoints by where they went. None
// without a replica.
func (s *Store) ReplicaCollectors() []prometheus.Collector {
	r := s.replica
	if r == nil {
		return nil
	}
	reads := func(i int) float64 { return float64(r.reads[i].Load()) }
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lc_db_replica_lag_seconds",
			Help: "How far the read replica was behind the primary at its last check (-1: unknown)."},
			func() float64 {
				if l := r.lag.Load(); l >= 0 {
					return time.Duration(l).Seconds()
				}
				return -1
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lc_db_replica_in_use",
			Help: "1 while reads of the read-only endpoints go to the read replica."},
			func() float64 {
				if r.usable.Load() {
					return 1
				}
				return 0
			}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lc_db_routed_requests_total",
			Help: "Requests of the read-only endpoints, by the database chosen for their reads.", ConstLabels: prometheus.Labels{"target": "replica"}},
			func() float64 { return reads(readReplica) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lc_db_routed_requests_total",
			Help: "Requests of the read-only endpoints, by the database chosen for their reads.", ConstLabels: prometheus.Labels{"target": "primary"}},
			func() float64 { return reads(readPrimary) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lc_db_replica_failovers_total",
			Help: "Statements that failed on the read replica and ran again on the primary."},
			func() float64 { return float64(r.again.Load()) }),
	}
}

// ReplicaInUse reports whether reads may go to the read replica now.
func (s *Store) ReplicaInUse() bool { return s.replica != nil && s.replica.fresh() }

// ReplicaLag is the read replica's lag at its last check; false while it
// is unknown (no replica, not checked yet, down, not a standby).
func (s *Store) ReplicaLag() (time.Duration, bool) {
	if s.replica == nil {
		return 0, false
	}
	l := s.replica.lag.Load()
	return time.Duration(l), l >= 0
}
