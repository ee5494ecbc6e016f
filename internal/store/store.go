// Package store implements the domain Store interfaces with GORM on
// PostgreSQL (production) and an embedded pure-Go SQLite (default).
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/libtnb/sqlite"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/lcorp/licensing-controller/internal/fault"
)

// Dialect names the database engine behind a Store.
type Dialect string

// Supported dialects.
const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

//go:embed migrations/postgres/*.sql migrations/sqlite/*.sql
var migrations embed.FS

// Store is the GORM implementation of the domain stores. A Store made by
// InTx is bound to that transaction.
type Store struct {
	db      *gorm.DB
	dialect Dialect
	pgcfg   *pgx.ConnConfig // PostgreSQL: for dedicated connections (LISTEN)
	replica *replica        // the read replica, nil without one (and in transactions)
	stop    context.CancelFunc
	// leaseKeys are the analytics lease keys read last (analytics_keys.go).
	leaseKeys *leaseKeyCache
	// revs are the accounts' revisions while ListenChanges runs.
	revs *revisionCache
	// commits are what runs once the transaction ends (nil outside one).
	commits *commitHooks
	// checkpointer copies the embedded store's WAL back in the background.
	checkpointer *sqliteCheckpointer
}

// Options select and tune the database.
type Options struct {
	// URL is a postgres:// URL; empty selects the embedded store in DataDir.
	URL     string
	DataDir string
	// MaxOpenConns bounds the PostgreSQL pool (default 20).
	MaxOpenConns int
	// StatementTimeout is PostgreSQL's statement_timeout of every
	// connection unless the URL sets one (default 30s; negative: none).
	StatementTimeout time.Duration
	// ReadURL is a postgres:// URL of a streaming standby of URL that the
	// reads of contexts marked by MayReadReplica go to while it is at most
	// ReadMaxLag (default 5s) behind; empty: none.
	ReadURL    string
	ReadMaxLag time.Duration
	Logger     *slog.Logger
}

// PgxConfig parses a PostgreSQL URL. Unless the URL names a
// default_query_exec_mode, statements are prepared on the server once per
// connection, so that PostgreSQL does not parse each again on every
// execution; and unless it names a plan_cache_mode, they are planned afresh
// on each execution with its parameter values (force_custom_plan). A
// generic plan would be the one a statement got while a table was small,
// and the engine's tables grow from nothing to millions of rows between two
// ANALYZEs (seen: lookups of a batch's agents scanning all the account's
// leases through the wrong index). Behind a pooler that cannot keep
// prepared statements, name default_query_exec_mode=cache_describe.
//
// The benchmark's own connections use it too, so that they plan as the
// service does.
func PgxConfig(url string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database URL: %w", err)
	}
	// JIT compiling costs 20 ms or more each time a plan's estimate
	// passes jit_above_cost, which an analytics read of a large estate
	// does while it runs for less than a second: off unless the URL says.
	if _, set := cfg.RuntimeParams["jit"]; !set {
		cfg.RuntimeParams["jit"] = "off"
	}
	if !strings.Contains(url, "default_query_exec_mode") {
		cfg.DefaultQueryExecMode = pgx.QueryExecModeCacheStatement
		if _, set := cfg.RuntimeParams["plan_cache_mode"]; !set {
			cfg.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
		}
	}
	return cfg, nil
}

// Open connects to the database selected by opt. It does not migrate.
func Open(ctx context.Context, opt Options) (*Store, error) {
	gcfg := &gorm.Config{
		TranslateError:         true,
		SkipDefaultTransaction: true, // writes that need one use InTx
		Logger:                 logger.Discard,
		NowFunc:                func() time.Time { return time.Now().UTC() },
	}
	var (
		db          *gorm.DB
		dialect     Dialect
		err         error
		rep         *replica
		replicaStop context.CancelFunc  = func() {}
		ckpt        *sqliteCheckpointer // SQLite
	)
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opt.URL != "" {
		dialect = Postgres
		var cfg *pgx.ConnConfig
		if cfg, err = PgxConfig(opt.URL); err == nil {
			setStatementTimeout(cfg, opt.StatementTimeout)
			pool := retryPool{db: stdlib.OpenDB(*cfg)}
			if opt.ReadURL != "" {
				mctx, stop := context.WithCancel(context.WithoutCancel(ctx))
				if pool.rep, err = openReplica(mctx, opt, pool.db, poolSize(opt)); err != nil {
					stop()
					_ = pool.db.Close()
					return nil, err
				}
				replicaStop = stop
			}
			if db, err = gorm.Open(postgres.New(postgres.Config{Conn: pool}), gcfg); err != nil {
				_ = pool.db.Close()
				if pool.rep != nil {
					_ = pool.rep.db.Close()
				}
			}
			rep = pool.rep
		}
	} else {
		dialect = SQLite
		if err := os.MkdirAll(opt.DataDir, 0o750); err != nil {
			return nil, fmt.Errorf("create data directory %s (LC_DATA_DIR): %w", opt.DataDir, err)
		}
		// SQLite says "out of memory" of a directory it cannot write.
		f, werr := os.CreateTemp(opt.DataDir, ".write-test-*")
		if werr != nil {
			return nil, fmt.Errorf("data directory %s (LC_DATA_DIR) is not writable: %w", opt.DataDir, werr)
		}
		_ = f.Close()
		_ = os.Remove(f.Name())
		path := filepath.Join(opt.DataDir, "licensing.db")
		var conn driver.Connector
		if conn, err = newSQLiteConnector(sqliteDSN(path) + fmt.Sprintf("&_pragma=wal_autocheckpoint(%d)", writerAutoCheckpoint)); err == nil {
			db, err = gorm.Open(sqlite.New(sqlite.Config{Conn: sql.OpenDB(conn)}), gcfg)
		}
		if err == nil {
			// After gorm.Open: the writer's connection has set WAL mode.
			if ckpt, err = startCheckpointer(sqliteDSN(path), checkpointEvery, log); err != nil {
				if sqlDB, derr := db.DB(); derr == nil {
					_ = sqlDB.Close()
				}
			}
		}
	}
	if err != nil {
		replicaStop()
		return nil, fmt.Errorf("open %s store: %w", dialect, translate(err))
	}
	sqlDB, err := db.DB()
	if err != nil {
		replicaStop()
		if rep != nil {
			_ = rep.db.Close()
		}
		if ckpt != nil {
			_ = ckpt.Close()
		}
		return nil, fmt.Errorf("open %s store: %w", dialect, err)
	}
	switch dialect {
	case Postgres:
		n := poolSize(opt)
		sqlDB.SetMaxOpenConns(n)
		sqlDB.SetMaxIdleConns(n)
		sqlDB.SetConnMaxLifetime(30 * time.Minute)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	case SQLite:
		// One connection is the single writer: transactions serialise, and
		// a check-and-write inside InTx cannot race another one.
		sqlDB.SetMaxOpenConns(1)
		sqlDB.SetMaxIdleConns(1)
		sqlDB.SetConnMaxLifetime(0)
	}
	s := &Store{db: db, dialect: dialect, replica: rep, stop: replicaStop, checkpointer: ckpt, leaseKeys: newLeaseKeyCache(), revs: newRevisionCache()}
	if dialect == Postgres {
		s.pgcfg, _ = PgxConfig(opt.URL) // parsed above already
	}
	if err := s.Ping(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// setStatementTimeout sets PostgreSQL's statement_timeout of every
// connection unless the URL sets one: d, 30s when 0, none when negative.
func setStatementTimeout(cfg *pgx.ConnConfig, d time.Duration) {
	if _, set := cfg.RuntimeParams["statement_timeout"]; set || d < 0 {
		return
	}
	if d == 0 {
		d = 30 * time.Second
	}
	cfg.RuntimeParams["statement_timeout"] = strconv.FormatInt(d.Milliseconds(), 10)
}

// poolSize is the PostgreSQL pool's size (of the replica's too).
func poolSize(opt Options) int {
	if opt.MaxOpenConns > 0 {
		return opt.MaxOpenConns
	}
	return 20
}

// Times are written as 2006-01-02 15:04:05.999999999-07:00 (_time_format)
// and read back into time.Time (_texttotime, _inttotime).
func sqliteDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
		"&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate" +
		"&_time_format=sqlite&_texttotime=1&_inttotime=1"
}

// Dialect returns the database engine.
func (s *Store) Dialect() Dialect { return s.dialect }

// DB returns the connection pool, for pool metrics.
func (s *Store) DB() (*sql.DB, error) { return s.db.DB() }

// Close closes the pool.
func (s *Store) Close() error {
	if s.stop != nil {
		s.stop()
	}
	if s.replica != nil {
		_ = s.replica.db.Close()
	}
	if s.checkpointer != nil {
		_ = s.checkpointer.Close()
	}
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s: %w", s.dialect, translate(err))
	}
	return nil
}

func (s *Store) provider() (*goose.Provider, error) {
	sqlDB, err := s.db.DB()
	if err != nil {
		return nil, err
	}
	return s.providerOn(sqlDB)
}

func (s *Store) providerOn(sqlDB *sql.DB) (*goose.Provider, error) {
	sub, err := fs.Sub(migrations, "migrations/"+string(s.dialect))
	if err != nil {
		return nil, err
	}
	gd := goose.DialectSQLite3
	opts := []goose.ProviderOption{goose.WithGoMigrations(constraintMigration(s.dialect))}
	if s.dialect == Postgres {
		gd = goose.DialectPostgres
		// Replicas starting together take turns.
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return nil, err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	return goose.NewProvider(gd, sqlDB, sub, opts...)
}

// Migrate applies the pending versioned migrations and returns the schema
// version reached.
func (s *Store) Migrate(ctx context.Context) (int64, error) {
	p, err := s.provider()
	if s.pgcfg != nil {
		// Migrations run without the sessions' statement_timeout: building
		// an index on a large table takes as long as it takes, and one
		// cancelled half-way leaves an invalid index behind.
		cfg := s.pgcfg.Copy()
		cfg.RuntimeParams["statement_timeout"] = "0"
		mdb := stdlib.OpenDB(*cfg)
		defer mdb.Close()
		p, err = s.providerOn(mdb)
	}
	if err != nil {
		return 0, fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return 0, fmt.Errorf("migrate %s: %w", s.dialect, translate(err))
	}
	v, err := p.GetDBVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", translate(err))
	}
	return v, nil
}

// readOnlyQuery is true on a server that cannot take writes: a standby in
// recovery, or one whose sessions default to read-only transactions.
const readOnlyQuery = "SELECT pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on'"

// Writable reports fault.ReadOnly when the database refuses writes.
func (s *Store) Writable(ctx context.Context) error {
	if s.dialect != Postgres {
		return nil
	}
	var ro bool
	if err := s.conn(ctx).Raw(readOnlyQuery).Scan(&ro).Error; err != nil {
		return fmt.Errorf("check that the database is writable: %w", translate(err))
	}
	if ro {
		return fault.ReadOnly
	}
	return nil
}

// Ready reports whether the database answers, takes writes and has no
// pending migration.
func (s *Store) Ready(ctx context.Context) error {
	if err := s.Ping(ctx); err != nil {
		return err
	}
	if err := s.Writable(ctx); err != nil {
		return err
	}
	p, err := s.provider()
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	pending, err := p.HasPending(ctx)
	if err != nil {
		return fmt.Errorf("check migrations: %w", translate(err))
	}
	if pending {
		return fmt.Errorf("schema is not migrated: %w", fault.ErrUnavailable)
	}
	return nil
}

// InTx runs fn in one transaction on a Store bound to it.
func (s *Store) InTx(ctx context.Context, fn func(*Store) error) error {
	hooks, outer := s.commits, s.commits == nil
	if outer {
		hooks = &commitHooks{}
	}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		return fn(&Store{db: tx, dialect: s.dialect, pgcfg: s.pgcfg, leaseKeys: s.leaseKeys, revs: s.revs, commits: hooks})
	})
	if outer {
		// Also after a failed commit: whether it reached the database is
		// not known, and the hooks only forget cached state.
		hooks.run()
	}
	return translate(err)
}

// commitHooks are the functions a transaction runs when it ends.
type commitHooks struct {
	mu  sync.Mutex
	fns []func()
}

func (h *commitHooks) run() {
	h.mu.Lock()
	fns := h.fns
	h.fns = nil
	h.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// afterCommit runs fn when the Store's transaction ends, at once outside
// one. fn may only forget cached state: it runs after a rollback too.
func (s *Store) afterCommit(fn func()) {
	if s.commits == nil {
		fn()
		return
	}
	s.commits.mu.Lock()
	s.commits.fns = append(s.commits.fns, fn)
	s.commits.mu.Unlock()
}

// conn is the store's database for ctx. Raw reads on hot paths end in
// Find, not Scan: gorm's Scan renders every statement with its parameters
// for its logger (regular expressions over the SQL, 8 % of a heartbeat's
// CPU) even when nothing is logged.
func (s *Store) conn(ctx context.Context) *gorm.DB { return s.db.WithContext(ctx) }

// withPgx runs fn (once more when the connection was lost: fn must start
// afresh) on a pooled PostgreSQL connection as pgx sees it, for reads
// of thousands of rows where database/sql's conversions are the cost. It
// is not for a Store bound to a transaction. A context marked by
// MayReadReplica reads from the read replica while it is in use.
func (s *Store) withPgx(ctx context.Context, fn func(*pgx.Conn) error) error {
	sqlDB, ok := s.pooled()
	if !ok {
		return errors.New("pgx connection: the store is bound to a transaction")
	}
	if s.replica.use(ctx, "SELECT") {
		if err := onPgx(ctx, s.replica.db, fn); !s.replica.failed(ctx, err) {
			return err
		}
	}
	// Reads only: one more try on a fresh connection when the server
	// closed this one (a restart).
	err := onPgx(ctx, sqlDB, fn)
	if err != nil && isConnLost(err) && ctx.Err() == nil {
		err = onPgx(ctx, sqlDB, fn)
	}
	return err
}

// onPgx runs fn on a connection of db as pgx sees it.
func onPgx(ctx context.Context, db *sql.DB, fn func(*pgx.Conn) error) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("pgx connection: %w", err)
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("pgx connection: driver connection is %T", dc)
		}
		return fn(c.Conn())
	})
}

// translate maps driver errors to fault kinds, keeping the original in the
// chain for logs.
func translate(err error) error {
	if err == nil {
		return nil
	}
	var fe *fault.Error
	switch {
	case errors.As(err, &fe):
		return err
	case errors.Is(err, gorm.ErrRecordNotFound):
		return fmt.Errorf("%w: %w", fault.ErrNotFound, err)
	case errors.Is(err, gorm.ErrDuplicatedKey):
		return fmt.Errorf("%w: %w", fault.ErrConflict, err)
	case isReadOnly(err):
		return fmt.Errorf("%w: %w", fault.ReadOnly, err)
	case isTimeout(err):
		return fmt.Errorf("%w: %w", fault.Timeout, err)
	case isConnLost(err):
		return fmt.Errorf("%w: %w: %w", fault.ErrUnavailable, fault.ErrConnLost, err)
	case isUnavailable(err):
		return fmt.Errorf("%w: %w", fault.ErrUnavailable, err)
	case isTransient(err):
		return fmt.Errorf("%w: %w", fault.ErrTransient, err)
	}
	return err
}

// isTransient reports a transaction PostgreSQL aborted in favour of a
// concurrent one: deadlock_detected (40P01), serialization_failure (40001).
func isTransient(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}

// isReadOnly reports a write refused by a read-only server:
// read_only_sql_transaction (25006).
func isReadOnly(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "25006"
}

// isTimeout reports a deadline that passed: the request's context, or
// PostgreSQL's statement_timeout (query_canceled, 57014).
func isTimeout(err error) bool {
	var pgErr *pgconn.PgError
	return errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) ||
		(errors.As(err, &pgErr) && pgErr.Code == "57014")
}

// isConnLost reports a connection that the server closed or reset under a
// statement: the pool replaces it on the next use.
func isConnLost(err error) bool {
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, pgconn.ErrConnClosed), errors.Is(err, sql.ErrConnDone), errors.Is(err, driver.ErrBadConn),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE):
		return true
	case errors.As(err, &pgErr):
		// 57P01-03: admin/crash shutdown, cannot connect now; class 08.
		return pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03" || pgErr.Code[:2] == "08"
	}
	return false
}

// isUnavailable reports errors that mean "the database cannot be reached
// now": the pool reconnects by itself once it is back.
func isUnavailable(err error) bool {
	var (
		netErr  net.Error
		connErr *pgconn.ConnectError
		pgErr   *pgconn.PgError
	)
	switch {
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.As(err, &connErr), errors.As(err, &netErr):
		return true
	case errors.As(err, &pgErr):
		// Class 08: connection exception; 57P01-03: shutdown, cannot connect now.
		return pgErr.Code[:2] == "08" || pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03"
	}
	return errors.Is(err, fault.ErrUnavailable)
}

// SchemaVersion returns the migration version the database is at.
func (s *Store) SchemaVersion(ctx context.Context) (int64, error) {
	p, err := s.provider()
	if err != nil {
		return 0, fmt.Errorf("migrations: %w", err)
	}
	v, err := p.GetDBVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", translate(err))
	}
	return v, nil
}

// Migration is one schema version and whether it is applied.
type Migration struct {
	Version   int64
	Name      string
	Applied   bool
	AppliedAt time.Time
}

// MigrationStatus lists every migration the binary knows, applied or
// pending, oldest first.
func (s *Store) MigrationStatus(ctx context.Context) ([]Migration, error) {
	p, err := s.provider()
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	st, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("migration status: %w", translate(err))
	}
	out := make([]Migration, len(st))
	for i, m := range st {
		out[i] = Migration{Version: m.Source.Version, Name: filepath.Base(m.Source.Path),
			Applied: m.State == goose.StateApplied, AppliedAt: m.AppliedAt.UTC()}
	}
	return out, nil
}

// SchemaVersionOfBinary is the newest schema version this binary migrates
// to (the highest migration it embeds).
func SchemaVersionOfBinary() int64 {
	var latest int64
	for _, dir := range []string{"migrations/postgres", "migrations/sqlite"} {
		entries, err := migrations.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			n, _, _ := strings.Cut(e.Name(), "_")
			if v, err := strconv.ParseInt(n, 10, 64); err == nil && v > latest {
				latest = v
			}
		}
	}
	return latest
}
