package auth_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/auth"
	"github.com/securestreams/ss/internal/sstest"
	"github.com/securestreams/ss/policy"
)

// servers is a token endpoint (/token) and an API (/api) on one loopback
// HTTP server. The API answers 200 "hello <token>" when the bearer token
// is one the endpoint issued and still valid, else 401.
type servers struct {
	srv   *httptest.Server
	calls atomic.Int32

	mu        sync.Mutex
	expiresIn int
	oauthErr  string
	down      bool
	hold      chan struct{}
	issued    map[string]time.Time
	forms     []url.Values
	seen      []string // Authorization headers the API got
}

func newServers(t *testing.T, expiresIn int) *servers {
	s := &servers{expiresIn: expiresIn, issued: map[string]time.Time{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", s.token)
	mux.HandleFunc("GET /api", s.api)
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

func (s *servers) token(w http.ResponseWriter, r *http.Request) {
	n := s.calls.Add(1)
	_ = r.ParseForm()
	s.mu.Lock()
	s.forms = append(s.forms, r.PostForm)
	hold, down, oerr, exp := s.hold, s.down, s.oauthErr, s.expiresIn
	s.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	switch {
	case down:
		w.WriteHeader(503)
		_, _ = w.Write([]byte(`{"error":"temporarily_unavailable"}`))
	case oerr != "":
		w.WriteHeader(400)
		_, _ = fmt.Fprintf(w, `{"error":%q,"error_description":"the refresh token was revoked"}`, oerr)
	default:
		tok := fmt.Sprintf("Atza|tok-%d", n)
		s.mu.Lock()
		s.issued[tok] = time.Now().Add(time.Duration(exp) * time.Second)
		s.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "bearer", "expires_in": exp})
	}
}

func (s *servers) api(w http.ResponseWriter, r *http.Request) {
	h := r.Header.Get("Authorization")
	s.mu.Lock()
	s.seen = append(s.seen, h)
	exp, ok := s.issued[strings.TrimPrefix(h, "Bearer ")]
	s.mu.Unlock()
	if !ok || time.Now().After(exp) {
		http.Error(w, "bad token", http.StatusUnauthorized)
		return
	}
	_, _ = fmt.Fprintf(w, "hello %s", strings.TrimPrefix(h, "Bearer "))
}

func (s *servers) set(f func(s *servers)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *servers) port() int { return s.srv.Listener.Addr().(*net.TCPAddr).Port }

// lwaPolicy: scheme "lwa" (slot 1) refreshed through "token_refresh"; "api"
// sends its token as a bearer header.
func lwaPolicy(t *testing.T, port int) *policy.Policy {
	t.Helper()
	js := fmt.Sprintf(`{
  "release": "t", "product": "t", "schema-version": 1,
  "retry": [{"default": {"backoff": [50, 100], "conceal": 2, "jitterpc": 0}}],
  "auth": [{"name": "lwa", "type": "lwa", "streamtype": "token_refresh", "blob": 1}],
  "s": [
    {"token_refresh": {"endpoint": "127.0.0.1", "port": %[1]d, "protocol": "h1", "tls": false,
      "http_method": "POST", "http_url": "token", "http_www_form_urlencoded": true,
      "retry": "default"}},
    {"api": {"endpoint": "127.0.0.1", "port": %[1]d, "protocol": "h1", "tls": false,
      "http_method": "GET", "http_url": "api", "retry": "default", "use_auth": "lwa",
      "http_auth_header": "authorization:", "http_auth_preamble": "Bearer "}}
  ]}`, port)
	p, diags, err := policy.Parse([]byte(js), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diags {
		t.Logf("policy: %v", d)
	}
	return p
}

// newRuntime is sstest.NewRuntime.
func newRuntime(t *testing.T, cfg ss.Config) *ss.Runtime { return sstest.NewRuntime(t, cfg) }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// events collects a stream's events.
type events struct {
	t  *testing.T
	s  *ss.Stream
	ev []ss.Event
}

func (e *events) until(d time.Duration, st ss.State) ss.Event {
	e.t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-e.s.Events():
			if !ok {
				e.t.Fatalf("channel closed waiting for %s; events: %s", st, e)
			}
			e.ev = append(e.ev, ev)
			if ev.Kind == ss.StateEvent && ev.State == st {
				return ev
			}
		case <-timer.C:
			e.t.Fatalf("no %s after %s; events: %s", st, d, e)
		}
	}
}

func (e *events) payload() string {
	var b strings.Builder
	for _, ev := range e.ev {
		if ev.Kind == ss.PayloadEvent {
			b.Write(ev.Payload)
		}
	}
	return b.String()
}

func (e *events) String() string {
	var parts []string
	for _, ev := range e.ev {
		if ev.Kind == ss.StateEvent {
			parts = append(parts, ev.State.String())
		} else {
			parts = append(parts, fmt.Sprintf("rx(%q)", ev.Payload))
		}
	}
	return strings.Join(parts, ", ")
}

func (e *events) destroy() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() {
		for range e.s.Events() {
		}
	}()
	if err := e.s.Destroy(ctx); err != nil {
		e.t.Errorf("Destroy: %v", err)
	}
}

func create(t *testing.T, rt *ss.Runtime, name string) *events {
	t.Helper()
	s, err := rt.Create(ctxT(t), name)
	if err != nil {
		t.Fatal(err)
	}
	e := &events{t: t, s: s}
	t.Cleanup(e.destroy)
	return e
}

var lwaCreds = auth.LWACredentials{RefreshToken: "Atzr|refresh", ClientID: "amzn1.application-oa2-client.x"}

func createWith(t *testing.T, rt *ss.Runtime, name string, opts ...ss.Option) *events {
	t.Helper()
	s, err := rt.Create(ctxT(t), name, opts...)
	if err != nil {
		t.Fatal(err)
	}
	e := &events{t: t, s: s}
	t.Cleanup(e.destroy)
	return e
}

// next reads one event (or returns after d).
func (e *events) next(d time.Duration) {
	select {
	case ev, ok := <-e.s.Events():
		if ok {
			e.ev = append(e.ev, ev)
		}
	case <-time.After(d):
	}
}
