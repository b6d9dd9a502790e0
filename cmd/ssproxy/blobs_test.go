package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/securestreams/ss"
)

// lwaServers is a token endpoint issuing "Atza|tok-N" and an API that
// answers "hello <token>" to a bearer token it issued.
type lwaServers struct {
	srv    *httptest.Server
	mu     sync.Mutex
	n      int
	issued map[string]bool
	forms  []string // refresh_token of each request
	serial []string // x-dsn header of each API request
}

func newLWAServers(t *testing.T) *lwaServers {
	s := &lwaServers{issued: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		s.mu.Lock()
		s.n++
		tok := fmt.Sprintf("Atza|tok-%d", s.n)
		s.issued[tok] = true
		s.forms = append(s.forms, r.PostForm.Get("refresh_token"))
		s.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "bearer", "expires_in": 3600})
	})
	mux.HandleFunc("GET /api", func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		s.mu.Lock()
		ok := s.issued[tok]
		s.serial = append(s.serial, r.Header.Get("x-dsn"))
		s.mu.Unlock()
		if !ok {
			http.Error(w, "bad token", http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, "hello %s", tok)
	})
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

func (s *lwaServers) refreshTokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.forms...)
}

func lwaProxyPolicy(port int) string {
	return fmt.Sprintf(`{"schema-version": 1,
  "auth": [{"name": "lwa", "type": "lwa", "streamtype": "token_refresh", "blob": 1}],
  "s": [
    {"token_refresh": {"endpoint": "127.0.0.1", "port": %[1]d, "protocol": "h1", "http_method": "POST",
      "http_url": "token", "http_www_form_urlencoded": true}},
    {"api": {"endpoint": "127.0.0.1", "port": %[1]d, "protocol": "h1", "http_method": "GET", "http_url": "api",
      "use_auth": "lwa", "http_auth_header": "authorization:", "http_auth_preamble": "Bearer ",
      "http_dsn_header": "x-dsn:"}}
  ]}`, port)
}

// roundTrip creates an "api" stream through the proxy and returns what it
// received once QOS_ACK_REMOTE arrives.
func roundTrip(t *testing.T, rt *ss.Runtime) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := rt.Create(ctx, "api")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		go func() {
			for range s.Events() {
			}
		}()
		_ = s.Destroy(ctx)
	}()
	if err := s.Connect(); err != nil {
		t.Fatal(err)
	}
	var body strings.Builder
	var seen []string
	for {
		select {
		case ev := <-s.Events():
			if ev.Kind == ss.PayloadEvent {
				body.Write(ev.Payload)
				continue
			}
			seen = append(seen, ev.State.String())
			switch ev.State {
			case ss.QoSAckRemote:
				return body.String()
			case ss.QoSNackRemote, ss.AllRetriesFailed, ss.AuthFailed:
				t.Fatalf("%s (%v) after %v", ev.State, ev.Err, seen)
			}
		case <-ctx.Done():
			t.Fatalf("no QOS_ACK_REMOTE; states %v", seen)
		}
	}
}

// TestDaemonBlobs: with -blobs the proxy holds the LWA credentials and the
// device serial, fetches the token through the policy's refresh
// streamtype, and the proxied stream's request carries it. SIGHUP re-reads
// the file (a new refresh token is used at once, the new device serial
// reaches the next request's x-dsn header); secrets never reach the log.
func TestDaemonBlobs(t *testing.T) {
	srv := newLWAServers(t)
	dir := t.TempDir()
	pfile, bfile, rtfile := filepath.Join(dir, "p.json"), filepath.Join(dir, "blobs.json"), filepath.Join(dir, "refresh")
	writeFile(t, pfile, lwaProxyPolicy(srv.srv.Listener.Addr().(*net.TCPAddr).Port))
	writeFile(t, rtfile, "Atzr|secret-one\n")
	writeFile(t, bfile, fmt.Sprintf(`{"device": {"serial": "SN-42"},
  "slots": {"1": {"lwa": {"refresh_token_file": %q, "client_id": "amzn1.client"}}}}`, rtfile))
	d := startDaemon(t, pfile, "-blobs", bfile, "-mqtt-client-id", "dev-42")
	d.WaitLog(t, 5*time.Second, "credentials loaded", "lwa[1]", "device")

	rt, err := ss.New(context.Background(), ss.Config{Proxy: d.Address})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	if got := roundTrip(t, rt); got != "hello Atza|tok-1" {
		t.Fatalf("payload %q", got)
	}
	if got := srv.refreshTokens(); len(got) != 1 || got[0] != "Atzr|secret-one" {
		t.Fatalf("refresh tokens sent: %q", got)
	}
	srv.mu.Lock()
	serial := srv.serial[0]
	srv.mu.Unlock()
	if serial != "SN-42" {
		t.Fatalf("x-dsn %q", serial)
	}

	writeFile(t, rtfile, "Atzr|secret-two\n")
	writeFile(t, bfile, fmt.Sprintf(`{"device": {"serial": "SN-43"},
  "slots": {"1": {"lwa": {"refresh_token_file": %q, "client_id": "amzn1.client"}}}}`, rtfile))
	d.Signal(t, syscall.SIGHUP)
	deadline := time.Now().Add(10 * time.Second)
	for len(srv.refreshTokens()) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no refresh with the new refresh token; log:\n%s", d.Log())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := srv.refreshTokens()[1]; got != "Atzr|secret-two" {
		t.Fatalf("after SIGHUP the refresh used %q", got)
	}
	// The token endpoint saw the request before the daemon stored the new
	// token: until it has, requests still carry the old (valid) one.
	for {
		got := roundTrip(t, rt)
		if got == "hello Atza|tok-2" {
			break
		}
		if got != "hello Atza|tok-1" || time.Now().After(deadline) {
			t.Fatalf("payload after SIGHUP %q", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The re-read device serial is in the headers of the next requests.
	for {
		roundTrip(t, rt)
		srv.mu.Lock()
		serial = srv.serial[len(srv.serial)-1]
		srv.mu.Unlock()
		if serial == "SN-43" {
			break
		}
		if serial != "SN-42" || time.Now().After(deadline) {
			t.Fatalf("x-dsn after SIGHUP %q, want SN-43", serial)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code, _ := d.Stop(t, syscall.SIGTERM, 5*time.Second); code != 0 {
		t.Errorf("SIGTERM: exit %d", code)
	}
	log := d.Log()
	for _, secret := range []string{"secret-one", "secret-two", "Atza|tok"} {
		if strings.Contains(log, secret) {
			t.Errorf("the log contains %q:\n%s", secret, log)
		}
	}
	if n := d.CountLog("credentials loaded"); n != 2 {
		t.Errorf("%d 'credentials loaded' lines, want 2 (start, SIGHUP)", n)
	}
}

// A bad -blobs file stops the daemon at startup with a message naming it.
func TestBlobsFileErrors(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"slot 7":      `{"slots": {"7": {"token": "x"}}}`,
		"unknown key": `{"slotz": {}}`,
		"missing":     `{"slots": {"0": {"token": "/nonexistent/tok"}}}`,
		"half cert":   `{"slots": {"0": {"cert": "c.pem"}}}`,
		"lwa":         `{"slots": {"0": {"lwa": {"client_id": "x"}}}}`,
	} {
		f := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".json")
		writeFile(t, f, content)
		if _, err := loadBlobs(context.Background(), f, ""); err == nil || !strings.Contains(err.Error(), "-blobs") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
