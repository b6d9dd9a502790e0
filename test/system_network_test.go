package test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/policy"
)

// cpdServer answers /generate_204 according to mode: "ok" 204, "redirect"
// 302 to a login page, "login" 200 with a login page, "hang" never.
type cpdServer struct {
	*httptest.Server
	mode atomic.Value
	stop chan struct{}
}

func newCPDServer(t *testing.T, mode string) *cpdServer {
	c := &cpdServer{stop: make(chan struct{})}
	c.mode.Store(mode)
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/generate_204":
		case "/hello":
			w.Write([]byte("hello"))
			return
		default:
			w.Write([]byte("<html>portal login</html>"))
			return
		}
		switch c.mode.Load().(string) {
		case "ok":
			w.WriteHeader(http.StatusNoContent)
		case "redirect":
			http.Redirect(w, r, "/login", http.StatusFound)
		case "login":
			w.Write([]byte("<html>portal login</html>"))
		case "hang":
			select {
			case <-c.stop:
			case <-r.Context().Done():
			}
		}
	}))
	t.Cleanup(func() { close(c.stop); c.Close() })
	return c
}

// cpdPolicy is the canonical captive_portal_detect streamtype pointing at
// endpoint, plus "app", an h1 GET of /hello on the same server.
func cpdPolicy(t *testing.T, endpoint string, timeoutMS int) *policy.Policy {
	t.Helper()
	return mustPolicy(t, fmt.Sprintf(`{"s": [
	{"captive_portal_detect": {"endpoint": %q, "protocol": "h1", "http_method": "GET",
		"http_url": "generate_204", "http_expect": 204, "http_fail_redirect": true,
		"opportunistic": true, "timeout_ms": %d}},
	{"app": {"endpoint": %q, "protocol": "h1", "http_method": "GET", "http_url": "hello"}}]}`, endpoint, timeoutMS, endpoint))
}

// TestCaptivePortalOutcomes: each of the four states, including a
// redirecting portal and one serving its login page in place of the 204.
func TestCaptivePortalOutcomes(t *testing.T) {
	cases := []struct {
		name, mode string
		want       ss.NetworkState
	}{
		{"204", "ok", ss.InternetOK},
		{"redirecting portal", "redirect", ss.CaptivePortal},
		{"login page portal", "login", ss.CaptivePortal},
		{"no answer", "hang", ss.NoInternet},
		{"refused", "", ss.NoInternet},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			endpoint := "+" + filepath.Join(t.TempDir(), "nobody.sock") // refused
			if c.mode != "" {
				endpoint = newCPDServer(t, c.mode).Listener.Addr().String()
			}
			rt := newRuntime(t, ss.Config{Policy: cpdPolicy(t, endpoint, 500)})
			if st := rt.NetworkState(); st != ss.NetworkUnknown {
				t.Fatalf("state before any check: %v", st)
			}
			start := time.Now()
			st, err := rt.CheckNetwork(context.Background())
			if err != nil || st != c.want {
				t.Fatalf("CheckNetwork = %v, %v; want %v", st, err, c.want)
			}
			if c.mode == "hang" && time.Since(start) < 400*time.Millisecond {
				t.Errorf("timed out after %v, want ≥ timeout_ms 500", time.Since(start))
			}
			if got := rt.NetworkState(); got != c.want {
				t.Errorf("NetworkState = %v, want %v", got, c.want)
			}
			select {
			case got := <-rt.NetworkStates():
				if got != c.want {
					t.Errorf("NetworkStates sent %v, want %v", got, c.want)
				}
			case <-time.After(5 * time.Second):
				t.Error("nothing on NetworkStates")
			}
			if n := rt.Stats().Streams; n != 0 {
				t.Errorf("%d streams left after the check", n)
			}
		})
	}
	t.Run("no streamtype", func(t *testing.T) {
		rt := newRuntime(t, ss.Config{Policy: newPolicy(rawType("x", "127.0.0.1", 1))})
		if _, err := rt.CheckNetwork(context.Background()); !errors.Is(err, ss.ErrNoCaptivePortalDetect) {
			t.Fatalf("CheckNetwork without the streamtype: %v", err)
		}
	})
}

// TestHoldUntilOnline: with HoldUntilOnline, a stream's attempt waits
// (no CONNECTING) while the network is a captive portal; after
// NetworkChanged the check finds InternetOK and the attempt goes ahead.
func TestHoldUntilOnline(t *testing.T) {
	srv := newCPDServer(t, "redirect")
	rt := newRuntime(t, ss.Config{Policy: cpdPolicy(t, srv.Listener.Addr().String(), 3000), HoldUntilOnline: true})
	select {
	case st := <-rt.NetworkStates(): // the check New started
		if st != ss.CaptivePortal {
			t.Fatalf("first check: %v", st)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no check at start")
	}
	s, err := rt.Create(context.Background(), "app")
	if err != nil {
		t.Fatal(err)
	}
	r := record(t, s)
	s.RequestTx()
	select {
	case ev := <-s.Events():
		r.ev = append(r.ev, ev)
		r.at = append(r.at, time.Now())
	case <-time.After(time.Second):
	}
	select {
	case ev := <-s.Events():
		t.Fatalf("held stream emitted %v (events so far: %s)", ev, r)
	case <-time.After(500 * time.Millisecond):
	}
	r.expect("CREATING")

	srv.mode.Store("ok")
	rt.NetworkChanged()
	r.untilState(10*time.Second, ss.QoSAckRemote)
	if rt.NetworkState() != ss.InternetOK {
		t.Fatalf("state %v", rt.NetworkState())
	}
	if r.payload() != "hello" {
		t.Fatalf("payload %q", r.payload())
	}
	s.Destroy(context.Background())
	r.closed(5 * time.Second)
}
