// Command lc-bench measures what authentication costs on the hot path: it
// starts the built licensing-controller binary and a bare Gin server that
// returns the same JSON, loads both with the same Go load generator, and
// prints requests/s and the ratios (target: authenticated ≥ 40 % of bare).
//
//	go run ./cmd/lc-bench --binary bin/licensing-controller
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lcorp/licensing-controller/internal/pgtest"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "baseline" {
		baseline(os.Args[2])
		return
	}
	if err := bench(); err != nil {
		fmt.Fprintln(os.Stderr, "lc-bench:", err)
		os.Exit(1)
	}
}

// baseline is the bare Gin server: one handler, no middleware.
func baseline(addr string) {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.GET("/controller/api/accounts/myaccount", func(c *gin.Context) {
		c.JSON(http.StatusOK, gin.H{"id": 1, "name": "customer1", "globalAccountName": "customer1_5f0c1e9a-3b7e-4c1f-9a53-1f0b8f3c2d11"})
	})
	if err := r.Run(addr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func start(ctx context.Context, name string, args []string, env []string) (*exec.Cmd, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	// nil: /dev/null, no copying goroutine in this process.
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return cmd, nil
}

func waitReady(u string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		res, err := http.Get(u)
		if err == nil {
			res.Body.Close()
			if res.StatusCode < 500 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s did not become ready", u)
}

func bench() error {
	binary := flag.String("binary", "bin/licensing-controller", "the built service")
	dur := flag.Duration("duration", 5*time.Second, "measuring time per scenario")
	conc := flag.Int("concurrency", 16, "parallel connections")
	storeKind := flag.String("store", "sqlite", "sqlite (the embedded store), or postgres (a throwaway server, fsync on)")
	flag.Parse()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	baseAddr, err := freeAddr()
	if err != nil {
		return err
	}
	b, err := start(ctx, self, []string{"baseline", baseAddr}, nil)
	if err != nil {
		return err
	}
	defer b.Process.Kill()

	svcAddr, err := freeAddr()
	if err != nil {
		return err
	}
	dataDir, err := os.MkdirTemp("", "lc-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dataDir)
	const pw = "bench-password"
	dbURL := ""
	switch *storeKind {
	case "sqlite":
	case "postgres":
		u, stop, err := pgtest.Server(ctx)
		if err != nil {
			return fmt.Errorf("start PostgreSQL: %w", err)
		}
		defer stop()
		dbURL = u
	default:
		return fmt.Errorf("--store %q: want sqlite or postgres", *storeKind)
	}
	fmt.Printf("store: %s\n", *storeKind)
	s, err := start(ctx, *binary, []string{"serve"}, []string{
		"LC_HTTP_ADDR=" + svcAddr, "LC_DATA_DIR=" + dataDir, "LC_BOOTSTRAP_ADMIN_PASSWORD=" + pw, "LC_DATABASE_URL=" + dbURL,
	})
	if err != nil {
		return err
	}
	defer s.Process.Kill()
	base, svc := "http://"+baseAddr, "http://"+svcAddr
	if err := waitReady(base + "/controller/api/accounts/myaccount"); err != nil {
		return err
	}
	if err := waitReady(svc + "/readyz"); err != nil {
		return err
	}
	token, err := bearerToken(svc, "admin@customer1", pw)
	if err != nil {
		return err
	}

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *conc, MaxConnsPerHost: *conc}}
	path := "/controller/api/accounts/myaccount"
	scenarios := []struct {
		name string
		url  string
		auth string
	}{
		{"bare gin", base + path, ""},
		{"bearer", svc + path, "Bearer " + token},
		{"basic", svc + path, basicHeader("admin@customer1", pw)},
		// The effective licence: what every agent-side script asks first.
		{"info", svc + "/controller/licensing/v1/account/1/info", "Bearer " + token},
	}
	results := map[string]float64{}
	fmt.Printf("GET %s, %d connections, %s per scenario\n", path, *conc, *dur)
	for _, sc := range scenarios {
		// Warm up (connections, caches), then measure.
		if _, err := load(client, sc.url, sc.auth, *conc, time.Second); err != nil {
			return fmt.Errorf("%s: %w", sc.name, err)
		}
		rps, err := load(client, sc.url, sc.auth, *conc, *dur)
		if err != nil {
			return fmt.Errorf("%s: %w", sc.name, err)
		}
		results[sc.name] = rps
		fmt.Printf("  %-9s %9.0f req/s\n", sc.name, rps)
	}
	failed := false
	for _, n := range []struct {
		name   string
		target float64
	}{{"bearer", 0.40}, {"basic", 0.40}, {"info", 0.50}} {
		r := results[n.name] / results["bare gin"]
		verdict := "ok"
		if r < n.target {
			verdict, failed = "BELOW TARGET", true
		}
		fmt.Printf("  %-6s / bare gin = %5.1f %%  (target >= %.0f %%) %s\n", n.name, 100*r, 100*n.target, verdict)
	}
	if failed {
		return errors.New("throughput below its target share of the bare Gin baseline")
	}
	return nil
}

func basicHeader(user, pass string) string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(user, pass)
	return req.Header.Get("Authorization")
}

// bearerToken creates an API client with the admin's basic credentials and
// returns a token for it.
func bearerToken(svc, user, pass string) (string, error) {
	req, _ := http.NewRequest("POST", svc+"/controller/api/accounts/1/api-clients",
		strings.NewReader(`{"name":"bench","role":"license-viewer"}`))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(user, pass)
	var cl struct {
		ClientID string `json:"clientId"`
		Secret   string `json:"secret"`
	}
	if err := doJSON(req, &cl); err != nil {
		return "", fmt.Errorf("create API client: %w", err)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {cl.ClientID}, "client_secret": {cl.Secret}}
	req, _ = http.NewRequest("POST", svc+"/controller/api/oauth/access_token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := doJSON(req, &tok); err != nil {
		return "", fmt.Errorf("get token: %w", err)
	}
	return tok.AccessToken, nil
}

func doJSON(req *http.Request, v any) error {
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode >= 300 {
		b, _ := io.ReadAll(res.Body)
		return fmt.Errorf("%s: %s", res.Status, b)
	}
	return json.NewDecoder(res.Body).Decode(v)
}

// load runs conc workers for d and returns successful requests per second.
// Any non-200 answer is an error: a fast failure is not throughput.
func load(client *http.Client, u, auth string, conc int, d time.Duration) (float64, error) {
	var (
		ok    atomic.Int64
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
	)
	stop := time.Now().Add(d)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", u, nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			for time.Now().Before(stop) {
				res, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %s", res.Status)
					}
				}
				if err != nil {
					errMu.Lock()
					if first == nil {
						first = err
					}
					errMu.Unlock()
					return
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(ok.Load()) / d.Seconds(), first
}
