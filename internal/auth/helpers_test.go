package auth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := NewStore(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return s
}

// tokenEndpoint is a local OAuth2 token endpoint: it counts calls, issues
// tokens "tok-N" that expire after expiresIn seconds, can be made to fail
// (HTTP 500) or to answer an OAuth2 error, and can hold requests until
// released.
type tokenEndpoint struct {
	srv   *httptest.Server
	calls atomic.Int32

	mu        sync.Mutex
	expiresIn float64
	fail      bool   // answer 500
	oauthErr  string // answer 400 with this error code
	hold      chan struct{}
	forms     []url.Values
	entered   chan struct{} // gets a value when a request arrives (if non-nil)
}

func newTokenEndpoint(t *testing.T, expiresIn float64) *tokenEndpoint {
	e := &tokenEndpoint{expiresIn: expiresIn}
	e.srv = httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *tokenEndpoint) serve(w http.ResponseWriter, r *http.Request) {
	n := e.calls.Add(1)
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	e.mu.Lock()
	e.forms = append(e.forms, r.PostForm)
	hold, fail, oerr, exp, entered := e.hold, e.fail, e.oauthErr, e.expiresIn, e.entered
	e.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
	}
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	switch {
	case fail:
		w.WriteHeader(500)
		_, _ = w.Write([]byte(`{"error":"server_error"}`))
	case oerr != "":
		w.WriteHeader(400)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": oerr, "error_description": "refresh token revoked"})
	default:
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "tok-" + itoa(int(n)), "token_type": "bearer", "expires_in": exp})
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func (e *tokenEndpoint) set(f func(e *tokenEndpoint)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f(e)
}

// lwaRefresher starts an LWA refresher on slot 1 of s posting to e.
func lwaRefresher(t *testing.T, s *Store, e *tokenEndpoint, cfg RefresherConfig) *Refresher {
	t.Helper()
	if err := s.SetLWA(ctxT(t), 1, LWACredentials{RefreshToken: "rt-1", ClientID: "cid"}); err != nil {
		t.Fatal(err)
	}
	cfg.Scheme, cfg.Slot, cfg.Store = "lwa", 1, s
	cfg.Provider = &LWA{Store: s, Slot: 1, Post: HTTPPost(e.srv.Client(), e.srv.URL+"/auth/o2/token")}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = 20 * time.Millisecond
	}
	if cfg.MinInterval == 0 {
		cfg.MinInterval = 10 * time.Millisecond
	}
	r, err := NewRefresher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return r
}

// waitOpen waits until the gate opens, returning the closed answers seen.
func waitOpen(t *testing.T, r *Refresher, within time.Duration) []error {
	t.Helper()
	ch := make(chan struct{}, 1)
	stop := r.Watch(func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	})
	defer stop()
	var errs []error
	deadline := time.After(within)
	for {
		open, _, err := r.Check()
		if open {
			return errs
		}
		if err != nil {
			errs = append(errs, err)
		}
		select {
		case <-ch:
		case <-deadline:
			t.Errorf("gate still closed after %s (last err %v)", within, err) // may run off the test goroutine
			return errs
		}
	}
}
