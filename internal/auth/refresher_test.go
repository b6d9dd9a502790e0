package auth

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/securestreams/ss/auth"
	"github.com/securestreams/ss/internal/event"
)

// The LWA form carries the refresh token, client id and (when set) secret,
// and the answer's access_token lands in the scheme's slot.
func TestLWARefreshForm(t *testing.T) {
	s := newStore(t)
	e := newTokenEndpoint(t, 3600)
	r := lwaRefresher(t, s, e, RefresherConfig{})
	waitOpen(t, r, 5*time.Second)
	tok := s.Token(1)
	if string(tok.Value) != "tok-1" || tok.Type != "bearer" {
		t.Fatalf("token %q type %q", tok.Value, tok.Type)
	}
	if d := time.Until(tok.Expiry); d < 3500*time.Second || d > 3600*time.Second {
		t.Fatalf("expiry in %s, want about an hour", d)
	}
	f := e.forms[0]
	if f.Get("grant_type") != "refresh_token" || f.Get("refresh_token") != "rt-1" || f.Get("client_id") != "cid" || f.Has("client_secret") {
		t.Fatalf("form %v", f)
	}
}

// A token living 1 s is refreshed at 0.6 s (RefreshAt; 0.9 by default,
// lower here so a loaded machine keeps a margin): the slot never holds an
// expired token, and every refresh happens before the previous expiry.
func TestRefreshBeforeExpiry(t *testing.T) {
	s := newStore(t)
	e := newTokenEndpoint(t, 1)
	r := lwaRefresher(t, s, e, RefresherConfig{Tuning: Tuning{RefreshAt: 0.6}})
	waitOpen(t, r, 5*time.Second)
	first := s.Token(1)
	end := time.Now().Add(2500 * time.Millisecond)
	seen := map[string]time.Time{string(first.Value): time.Now()}
	for time.Now().Before(end) {
		tok := s.Token(1)
		if !tok.Valid(time.Now()) {
			t.Fatalf("slot held an invalid token %q (expiry %s) at %s", tok.Value, tok.Expiry, time.Now())
		}
		if _, ok := seen[string(tok.Value)]; !ok {
			seen[string(tok.Value)] = time.Now()
		}
		time.Sleep(5 * time.Millisecond)
	}
	if len(seen) < 3 {
		t.Fatalf("saw %d tokens in 2.5 s of 1 s tokens, want ≥ 3 (refreshes %d)", len(seen), r.Refreshes())
	}
	if t2, ok := seen["tok-2"]; !ok || !t2.Before(first.Expiry) {
		t.Fatalf("tok-2 arrived at %v, after tok-1 expired at %v", t2, first.Expiry)
	}
}

// 100 streams waiting for the first token cause one refresh.
func TestOneRefreshForManyWaiters(t *testing.T) {
	s := newStore(t)
	e := newTokenEndpoint(t, 3600)
	hold := make(chan struct{})
	e.set(func(e *tokenEndpoint) { e.hold = hold })
	r := lwaRefresher(t, s, e, RefresherConfig{})
	var wg sync.WaitGroup
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			waitOpen(t, r, 10*time.Second)
		}()
	}
	time.Sleep(200 * time.Millisecond) // every waiter has asked by now
	close(hold)
	wg.Wait()
	if n := e.calls.Load(); n != 1 {
		t.Fatalf("token endpoint called %d times, want 1", n)
	}
	if r.Refreshes() != 1 {
		t.Fatalf("%d refreshes", r.Refreshes())
	}
}

// While the refresh ahead of expiry is in flight the old token is served
// and streams pass the gate.
func TestOldTokenServedDuringRefresh(t *testing.T) {
	s := newStore(t)
	e := newTokenEndpoint(t, 1)
	entered := make(chan struct{}, 4)
	e.set(func(e *tokenEndpoint) { e.entered = entered })
	r := lwaRefresher(t, s, e, RefresherConfig{Tuning: Tuning{RefreshAt: 0.5}})
	waitOpen(t, r, 5*time.Second)
	<-entered
	hold := make(chan struct{})
	e.set(func(e *tokenEndpoint) { e.hold = hold })
	select {
	case <-entered: // the second refresh, at about 0.5 s, is now held
	case <-time.After(5 * time.Second):
		t.Fatal("no refresh ahead of expiry")
	}
	if tok := s.Token(1); string(tok.Value) != "tok-1" || !tok.Valid(time.Now()) {
		t.Fatalf("during the refresh the slot holds %q valid=%v, want tok-1", tok.Value, tok.Valid(time.Now()))
	}
	if open, _, err := r.Check(); !open {
		t.Fatalf("gate closed during the refresh: %v", err)
	}
	close(hold)
	deadline := time.Now().Add(5 * time.Second)
	for string(s.Token(1).Value) != "tok-2" {
		if time.Now().After(deadline) {
			t.Fatalf("slot still %q", s.Token(1).Value)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// While the endpoint is down the gate reports AUTH_FAILED with a transient
// RefreshError and the refresher keeps retrying; once the endpoint is back
// the token arrives and the gate opens.
func TestRecoveryAfterEndpointDown(t *testing.T) {
	s := newStore(t)
	e := newTokenEndpoint(t, 3600)
	e.set(func(e *tokenEndpoint) { e.fail = true })
	r := lwaRefresher(t, s, e, RefresherConfig{})
	var failed error
	deadline := time.Now().Add(5 * time.Second)
	for failed == nil {
		open, st, err := r.Check()
		if open {
			t.Fatal("gate open with the endpoint down")
		}
		if st == event.AuthFailed {
			failed = err
		}
		if time.Now().After(deadline) {
			t.Fatal("no AUTH_FAILED")
		}
		time.Sleep(5 * time.Millisecond)
	}
	var re *RefreshError
	if !errors.As(failed, &re) || re.Permanent || re.Scheme != "lwa" {
		t.Fatalf("cause %v, want a transient *RefreshError of scheme lwa", failed)
	}
	for e.calls.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d attempts while down", e.calls.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.set(func(e *tokenEndpoint) { e.fail = false })
	waitOpen(t, r, 5*time.Second)
	if r.Err() != nil {
		t.Fatalf("Err after recovery: %v", r.Err())
	}
}

// invalid_grant is reported at once as a permanent failure and not retried
// until the credentials change.
func TestInvalidGrantNotRetried(t *testing.T) {
	s := newStore(t)
	e := newTokenEndpoint(t, 3600)
	e.set(func(e *tokenEndpoint) { e.oauthErr = "invalid_grant" })
	r := lwaRefresher(t, s, e, RefresherConfig{})
	deadline := time.Now().Add(5 * time.Second)
	var cause error
	for {
		_, st, err := r.Check()
		if st == event.AuthFailed {
			cause = err
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no AUTH_FAILED")
		}
		time.Sleep(5 * time.Millisecond)
	}
	var re *RefreshError
	var oe *OAuthError
	if !errors.Is(cause, auth.ErrInvalidGrant) || !errors.As(cause, &re) || !re.Permanent || !errors.As(cause, &oe) || oe.Description != "refresh token revoked" {
		t.Fatalf("cause %v", cause)
	}
	time.Sleep(300 * time.Millisecond) // 15× the backoff: no retry must happen
	for range 10 {
		r.Check()
	}
	time.Sleep(50 * time.Millisecond)
	if n := e.calls.Load(); n != 1 {
		t.Fatalf("invalid_grant retried: %d calls", n)
	}
	// New credentials lift it.
	e.set(func(e *tokenEndpoint) { e.oauthErr = "" })
	if err := s.SetLWA(ctxT(t), 1, LWACredentials{RefreshToken: "rt-2", ClientID: "cid"}); err != nil {
		t.Fatal(err)
	}
	waitOpen(t, r, 5*time.Second)
	if got := e.forms[len(e.forms)-1].Get("refresh_token"); got != "rt-2" {
		t.Fatalf("refreshed with %q", got)
	}
}

// Missing credentials are a permanent failure naming what is missing.
func TestNoCredentials(t *testing.T) {
	s := newStore(t)
	r, err := NewRefresher(RefresherConfig{Scheme: "x", Slot: 2, Store: s, Provider: &LWA{Store: s, Slot: 2}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, st, err := r.Check()
		if st == event.AuthFailed {
			if !errors.Is(err, errNoCredentials) {
				t.Fatalf("cause %v", err)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no AUTH_FAILED")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Close cancels a refresh in flight and returns.
func TestCloseDuringRefresh(t *testing.T) {
	s := newStore(t)
	e := newTokenEndpoint(t, 3600)
	entered := make(chan struct{}, 1)
	e.set(func(e *tokenEndpoint) { e.hold, e.entered = make(chan struct{}), entered })
	r := lwaRefresher(t, s, e, RefresherConfig{})
	r.Check()
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal("second Close:", err)
	}
	if open, st, err := r.Check(); open || st != event.AuthFailed || !errors.Is(err, errClosed) {
		t.Fatalf("Check after Close: %v %v %v", open, st, err)
	}
}
