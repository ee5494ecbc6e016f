// Package pgtest gives tests a real PostgreSQL: a throwaway server started
// from the local binaries (initdb/pg_ctl, as the postgres user when running
// as root), or the server named by LC_TEST_POSTGRES_URL. The throwaway
// server runs without fsync unless LC_PGTEST_FSYNC=on. Each call to URL
// creates a fresh database, dropped when the test ends.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

var (
	once     sync.Once
	adminURL string
	startErr error
	stopFn   func()
	// restartFn restarts the throwaway server (nil with LC_TEST_POSTGRES_URL).
	restartFn func(mode string) error
)

// Restart restarts the throwaway server with pg_ctl restart -m mode
// (immediate: a crash, as far as clients can tell) and waits until it
// accepts connections again. Tests that use it must not run in parallel
// with others of their package. It fails on a server that pgtest did not
// start (LC_TEST_POSTGRES_URL).
func Restart(mode string) error {
	if ok, err := Available(); !ok {
		return err
	}
	if restartFn == nil {
		return errors.New("pgtest: the server was not started by pgtest (LC_TEST_POSTGRES_URL): it cannot be restarted")
	}
	return restartFn(mode)
}

// Main runs the tests of a package and stops the throwaway server after.
// Use it from TestMain: os.Exit(pgtest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if stopFn != nil {
		stopFn()
	}
	return code
}

// Available reports whether a server could be started (starting it if needed).
func Available() (bool, error) {
	once.Do(start)
	return startErr == nil, startErr
}

// URL returns the URL of a new empty database. Without PostgreSQL the test
// is skipped with a loud message, or fails when CI=true.
func URL(t testing.TB) string {
	t.Helper()
	if ok, err := Available(); !ok {
		msg := fmt.Sprintf("PostgreSQL NOT AVAILABLE, PostgreSQL suite SKIPPED: %v", err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true requires PostgreSQL)")
		}
		t.Skip(msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := sql.Open("pgx", adminURL)
	if err != nil {
		t.Fatalf("pgtest: open admin connection: %v", err)
	}
	defer db.Close()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "t_" + hex.EncodeToString(b)
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		db, err := sql.Open("pgx", adminURL)
		if err != nil {
			t.Errorf("pgtest: open admin connection: %v", err)
			return
		}
		defer db.Close()
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return withDatabase(adminURL, name)
}

func withDatabase(admin, name string) string {
	u, err := url.Parse(admin)
	if err != nil {
		panic(fmt.Sprintf("pgtest: admin URL: %v", err))
	}
	u.Path = "/" + name
	return u.String()
}

func start() {
	if u := os.Getenv("LC_TEST_POSTGRES_URL"); u != "" {
		adminURL = u
		return
	}
	bin, err := findBinDir()
	if err != nil {
		startErr = err
		return
	}
	dir, err := os.MkdirTemp("", "lc-pgtest-")
	if err != nil {
		startErr = fmt.Errorf("temp dir: %w", err)
		return
	}
	cred, err := credential(dir)
	if err != nil {
		startErr = err
		_ = os.RemoveAll(dir)
		return
	}
	run := func(name string, args ...string) error {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %w: %s", name, err, out)
		}
		return nil
	}
	data := filepath.Join(dir, "data")
	if err := run("initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions"); err != nil {
		startErr = err
		_ = os.RemoveAll(dir)
		return
	}
	port, err := freePort()
	if err != nil {
		startErr = err
		_ = os.RemoveAll(dir)
		return
	}
	durability := "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
	if os.Getenv("LC_PGTEST_FSYNC") == "on" { // production settings, for benchmarks
		durability = "-c fsync=on -c synchronous_commit=on -c full_page_writes=on"
	}
	buffers := "128MB"
	if b := os.Getenv("LC_PGTEST_SHARED_BUFFERS"); b != "" { // a benchmark's estate
		buffers = b
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 %s -c max_connections=400 -c shared_buffers=%s",
		port, dir, durability, buffers)
	if err := run("pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "start"); err != nil {
		startErr = err
		_ = os.RemoveAll(dir)
		return
	}
	adminURL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	restartFn = func(mode string) error {
		return run("pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-m", mode, "-w", "-t", "60", "restart")
	}
	stopFn = func() {
		_ = run("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
		_ = os.RemoveAll(dir)
	}
	fmt.Fprintf(os.Stderr, "pgtest: started throwaway PostgreSQL from %s on port %d\n", bin, port)
}

// BinDir is the directory of the local PostgreSQL binaries (initdb,
// pg_ctl, psql, pgbench).
func BinDir() (string, error) { return findBinDir() }

// findBinDir finds initdb and pg_ctl on PATH or in Debian's versioned dirs.
func findBinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("pg_ctl"); err == nil {
			real, err := filepath.EvalSymlinks(p)
			if err != nil {
				real = p
			}
			return filepath.Dir(real), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("no initdb/pg_ctl on PATH or in /usr/lib/postgresql/*/bin (apt-get install -y postgresql)")
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// credential returns the postgres user's credential when running as root
// (PostgreSQL refuses to run as root) and hands dir over to it.
func credential(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root and there is no postgres user to run PostgreSQL as: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, fmt.Errorf("chown %s: %w", dir, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Server starts the throwaway server if needed (or uses
// LC_TEST_POSTGRES_URL) and returns the URL of a new empty database and a
// function that stops the server. For tools (the load generator) outside
// tests.
func Server(ctx context.Context) (string, func(), error) {
	if ok, err := Available(); !ok {
		return "", nil, err
	}
	db, err := sql.Open("pgx", adminURL)
	if err != nil {
		return "", nil, fmt.Errorf("pgtest: open admin connection: %w", err)
	}
	defer db.Close()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "bench_" + hex.EncodeToString(b)
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("pgtest: create database: %w", err)
	}
	stop := func() {
		if stopFn != nil {
			stopFn()
		}
	}
	return withDatabase(adminURL, name), stop, nil
}

// Replicated is a throwaway primary and a streaming standby of it
// (pg_basebackup -R), of one test, with a database "lc" on both.
type Replicated struct {
	PrimaryURL, StandbyURL string
	standby                func(args ...string) error
}

// NewReplicated starts a primary and its standby for t, stopped when t
// ends. It needs the local PostgreSQL binaries (skipped without them when
// LC_TEST_POSTGRES_URL names the server of the other tests).
func NewReplicated(t testing.TB) *Replicated {
	t.Helper()
	bin, err := findBinDir()
	if err != nil {
		if os.Getenv("LC_TEST_POSTGRES_URL") != "" {
			t.Skipf("pgtest: a standby needs the local PostgreSQL binaries: %v", err)
		}
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "lc-pgrepl-")
	if err != nil {
		t.Fatal(err)
	}
	cred, err := credential(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	run := func(name string, args ...string) error {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %w: %s", name, err, out)
		}
		return nil
	}
	ports := [2]int{}
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			t.Fatal(err)
		}
	}
	primary, standby := filepath.Join(dir, "primary"), filepath.Join(dir, "standby")
	ctl := func(data string, port int) func(args ...string) error {
		opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100 "+
			"-c wal_level=replica -c max_wal_senders=5 -c hot_standby=on", port, dir)
		return func(args ...string) error {
			return run("pg_ctl", append([]string{"-D", data, "-o", opts, "-l", data + ".log", "-w", "-t", "60"}, args...)...)
		}
	}
	if err := run("initdb", "-D", primary, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions"); err != nil {
		t.Fatal(err)
	}
	startPrimary := ctl(primary, ports[0])
	if err := startPrimary("start"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = startPrimary("-m", "immediate", "stop") })
	r := &Replicated{
		PrimaryURL: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/lc?sslmode=disable", ports[0]),
		StandbyURL: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/lc?sslmode=disable", ports[1]),
		standby:    ctl(standby, ports[1]),
	}
	db, err := sql.Open("pgx", withDatabase(r.PrimaryURL, "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec("CREATE DATABASE lc")
	_ = db.Close()
	if err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	if err := run("pg_basebackup", "-h", "127.0.0.1", "-p", strconv.Itoa(ports[0]), "-U", "postgres", "-D", standby,
		"-R", "-X", "stream", "--checkpoint=fast", "--no-sync"); err != nil {
		t.Fatal(err)
	}
	if err := r.standby("start"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.standby("-m", "immediate", "stop") })
	return r
}

// StopStandby stops the standby (fast shutdown).
func (r *Replicated) StopStandby() error { return r.standby("-m", "fast", "stop") }

// StartStandby starts the standby again.
func (r *Replicated) StartStandby() error { return r.standby("start") }

// SetReplay pauses or resumes the standby's replay of the primary's WAL.
func (r *Replicated) SetReplay(ctx context.Context, on bool) error {
	db, err := sql.Open("pgx", r.StandbyURL)
	if err != nil {
		return err
	}
	defer db.Close()
	f := "pg_wal_replay_pause"
	if on {
		f = "pg_wal_replay_resume"
	}
	if _, err := db.ExecContext(ctx, "SELECT "+f+"()"); err != nil {
		return fmt.Errorf("pgtest: %s: %w", f, err)
	}
	return nil
}
