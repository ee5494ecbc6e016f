package webhook

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"
)

func TestCrosses(t *testing.T) {
	ts := []int{80, 90}
	for _, c := range []struct {
		before, after, limit int64
		want                 bool
	}{
		{79, 80, 100, true},  // up over 80
		{80, 81, 100, false}, // above, no new level
		{81, 79, 100, false}, // down, not yet to the re-arm level
		{76, 75, 100, true},  // down to 75: re-arms 80
		{74, 73, 100, false}, // already re-armed
		{0, 100, 100, true},  // over both
		{5, 10, 0, false},    // no limit
		{9, 9, 10, false},    // no change
		{1 << 62, 1<<62 + 1, 1 << 62, false},
		{7, 8, 10, true},
	} {
		if got := Crosses(ts, c.before, c.after, c.limit); got != c.want {
			t.Errorf("Crosses(%d -> %d of %d) = %v, want %v", c.before, c.after, c.limit, got, c.want)
		}
	}
}

func TestSignVerify(t *testing.T) {
	body := []byte(`{"id":"x","type":"ping"}`)
	sig := Sign("secret-of-the-endpoint", "1764640000", body)
	if !Verify("secret-of-the-endpoint", "1764640000", body, sig) {
		t.Fatal("own signature does not verify")
	}
	for _, bad := range []struct{ secret, ts, body string }{
		{"another-secret-entirely", "1764640000", string(body)},
		{"secret-of-the-endpoint", "1764640001", string(body)},
		{"secret-of-the-endpoint", "1764640000", string(body) + " "},
	} {
		if Verify(bad.secret, bad.ts, []byte(bad.body), sig) {
			t.Errorf("verifies with %+v", bad)
		}
	}
}

func TestBackoffDoublesWithJitterAndCap(t *testing.T) {
	d := NewDeliverer(nil, DelivererOptions{RetryBase: time.Second})
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 40: RetryCap} {
		for range 50 {
			if got := d.backoff(n); got < want/2 || got > want {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", n, got, want/2, want)
			}
		}
	}
}

func TestDenyPrivateRefusesLocalAddresses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer srv.Close()
	if _, err := client(true).Get(srv.URL); !errors.Is(err, errPrivateAddress) {
		t.Errorf("loopback with DenyPrivate: %v, want errPrivateAddress", err)
	}
	res, err := client(false).Get(srv.URL)
	if err != nil {
		t.Fatalf("loopback without DenyPrivate: %v", err)
	}
	res.Body.Close()
	for addr, want := range map[string]bool{"8.8.8.8": true, "2001:4860:4860::8888": true, "10.1.2.3": false, "192.168.0.1": false,
		"169.254.169.254": false, "::1": false, "fd00::1": false, "100.64.1.1": false, "0.0.0.0": false, "::ffff:127.0.0.1": false} {
		if got := public(netip.MustParseAddr(addr)); got != want {
			t.Errorf("public(%s) = %v, want %v", addr, got, want)
		}
	}
}
