package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/lcorp/licensing-controller/internal/pgtest"
)

// The PostgreSQL ceiling: the registration- and heartbeat-shaped
// transactions of ceiling/*.sql run by pgbench on the service's own
// server, right before and after the service is measured, so that the
// service's rates can be divided by what the database alone does on the
// same machine in the same run.

//go:embed ceiling/*.sql
var ceilingSQL embed.FS

// ceiling is the TPS of pgbench's register and heartbeat scripts.
type ceiling struct{ register, heartbeat float64 }

var tpsLine = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

// measureCeiling runs each script for 10 s at 16 clients on a scratch
// database of the server of dbURL, from the same state each time.
func measureCeiling(ctx context.Context, dbURL string) (ceiling, error) {
	bin, err := pgtest.BinDir()
	if err != nil {
		return ceiling{}, err
	}
	dir, err := os.MkdirTemp("", "lc-ceiling-")
	if err != nil {
		return ceiling{}, err
	}
	defer os.RemoveAll(dir)
	for _, f := range []string{"schema", "reset", "register", "heartbeat"} {
		b, err := ceilingSQL.ReadFile("ceiling/" + f + ".sql")
		if err != nil {
			return ceiling{}, err
		}
		if err := os.WriteFile(filepath.Join(dir, f+".sql"), b, 0o644); err != nil {
			return ceiling{}, err
		}
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		return ceiling{}, fmt.Errorf("database URL: %w", err)
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "ceiling_" + hex.EncodeToString(b)
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		return ceiling{}, err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return ceiling{}, fmt.Errorf("create the ceiling's database: %w", err)
	}
	defer func() { _, _ = db.ExecContext(context.WithoutCancel(ctx), "DROP DATABASE IF EXISTS "+name) }()
	u.Path = "/" + name
	target := u.String()
	run := func(tool string, args ...string) (string, error) {
		out, err := exec.CommandContext(ctx, filepath.Join(bin, tool), args...).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("%s: %w: %s", tool, err, out)
		}
		return string(out), nil
	}
	if _, err := run("psql", "-q", "-X", "-v", "ON_ERROR_STOP=1", "-d", target, "-f", filepath.Join(dir, "schema.sql")); err != nil {
		return ceiling{}, err
	}
	var c ceiling
	for _, s := range []struct {
		file string
		tps  *float64
	}{{"register", &c.register}, {"heartbeat", &c.heartbeat}} {
		if _, err := run("psql", "-q", "-X", "-v", "ON_ERROR_STOP=1", "-d", target, "-f", filepath.Join(dir, "reset.sql")); err != nil {
			return ceiling{}, err
		}
		out, err := run("pgbench", "-n", "-M", "prepared", "-c", "16", "-j", "2", "-T", "10", "-f", filepath.Join(dir, s.file+".sql"), target)
		if err != nil {
			return ceiling{}, err
		}
		m := tpsLine.FindStringSubmatch(out)
		if m == nil {
			return ceiling{}, fmt.Errorf("pgbench %s: no TPS in %q", s.file, out)
		}
		if *s.tps, err = strconv.ParseFloat(m[1], 64); err != nil {
			return ceiling{}, err
		}
	}
	fmt.Printf("PostgreSQL ceiling (pgbench, 16 clients): register %.0f TPS, heartbeat %.0f TPS\n", c.register, c.heartbeat)
	return c, nil
}
