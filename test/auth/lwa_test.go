package auth_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/auth"
)

// A stream of an lwa streamtype waits for its token, which the refresher
// fetches through the policy's token_refresh streamtype (a form POST), and
// then sends it as a bearer header.
func TestLWAStreamWaitsForToken(t *testing.T) {
	srv := newServers(t, 3600)
	rt := newRuntime(t, ss.Config{Policy: lwaPolicy(t, srv.port())})
	if err := rt.Blobs().SetLWA(ctxT(t), 1, lwaCreds); err != nil {
		t.Fatal(err)
	}
	e := create(t, rt, "api")
	if err := e.s.Connect(); err != nil {
		t.Fatal(err)
	}
	e.until(10*time.Second, ss.QoSAckRemote)
	if got := e.payload(); got != "hello Atza|tok-1" {
		t.Fatalf("payload %q; events %s", got, e)
	}
	f := srv.forms[0]
	if f.Get("grant_type") != "refresh_token" || f.Get("refresh_token") != lwaCreds.RefreshToken || f.Get("client_id") != lwaCreds.ClientID {
		t.Fatalf("form %v", f)
	}
	for _, ev := range e.ev {
		if ev.Kind == ss.StateEvent && (ev.State == ss.AuthFailed || ev.State == ss.Unreachable) {
			t.Fatalf("unexpected %s: %s", ev.State, e)
		}
	}
}

// Many streams waiting for the first token share one refresh.
func TestLWAOneRefreshForManyStreams(t *testing.T) {
	srv := newServers(t, 3600)
	hold := make(chan struct{})
	srv.set(func(s *servers) { s.hold = hold })
	rt := newRuntime(t, ss.Config{Policy: lwaPolicy(t, srv.port())})
	if err := rt.Blobs().SetLWA(ctxT(t), 1, lwaCreds); err != nil {
		t.Fatal(err)
	}
	const n = 100
	es := make([]*events, n)
	for i := range es {
		es[i] = create(t, rt, "api")
		if err := es[i].s.Connect(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	close(hold)
	var wg sync.WaitGroup
	for _, e := range es {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.until(20*time.Second, ss.QoSAckRemote)
		}()
	}
	wg.Wait()
	if c := srv.calls.Load(); c != 1 {
		t.Fatalf("%d token requests for %d streams, want 1", c, n)
	}
}

// invalid_grant: the waiting stream gets AUTH_FAILED with the OAuth error
// as Event.Err, no retry hammers the endpoint, and new credentials let the
// stream connect.
func TestLWAInvalidGrantAuthFailed(t *testing.T) {
	srv := newServers(t, 3600)
	srv.set(func(s *servers) { s.oauthErr = "invalid_grant" })
	rt := newRuntime(t, ss.Config{Policy: lwaPolicy(t, srv.port())})
	if err := rt.Blobs().SetLWA(ctxT(t), 1, lwaCreds); err != nil {
		t.Fatal(err)
	}
	e := create(t, rt, "api")
	if err := e.s.Connect(); err != nil {
		t.Fatal(err)
	}
	ev := e.until(10*time.Second, ss.AuthFailed)
	var re *auth.RefreshError
	if !errors.Is(ev.Err, auth.ErrInvalidGrant) || !errors.As(ev.Err, &re) || !re.Permanent || !strings.Contains(ev.Err.Error(), "revoked") {
		t.Fatalf("AUTH_FAILED cause %v", ev.Err)
	}
	time.Sleep(300 * time.Millisecond)
	if c := srv.calls.Load(); c != 1 {
		t.Fatalf("invalid_grant retried: %d token requests", c)
	}
	srv.set(func(s *servers) { s.oauthErr = "" })
	fixed := lwaCreds
	fixed.RefreshToken = "Atzr|new"
	if err := rt.Blobs().SetLWA(ctxT(t), 1, fixed); err != nil {
		t.Fatal(err)
	}
	e.until(10*time.Second, ss.QoSAckRemote)
	if got := e.payload(); got != "hello Atza|tok-2" {
		t.Fatalf("payload %q; events %s", got, e)
	}
}

// While the token endpoint is down the stream reports AUTH_FAILED (cause:
// the refresh stream's failure) and recovers once it is back.
func TestLWARecoversAfterEndpointDown(t *testing.T) {
	srv := newServers(t, 3600)
	srv.set(func(s *servers) { s.down = true })
	rt := newRuntime(t, ss.Config{Policy: lwaPolicy(t, srv.port()),
		Auth: ss.AuthConfig{Refresh: auth.Tuning{MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}}})
	if err := rt.Blobs().SetLWA(ctxT(t), 1, lwaCreds); err != nil {
		t.Fatal(err)
	}
	e := create(t, rt, "api")
	if err := e.s.Connect(); err != nil {
		t.Fatal(err)
	}
	ev := e.until(10*time.Second, ss.AuthFailed)
	var re *auth.RefreshError
	if !errors.As(ev.Err, &re) || re.Permanent || !errors.Is(ev.Err, ss.ErrRefreshStream) {
		t.Fatalf("AUTH_FAILED cause %v", ev.Err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for srv.calls.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	srv.set(func(s *servers) { s.down = false })
	e.until(15*time.Second, ss.QoSAckRemote)
	if got := e.payload(); !strings.HasPrefix(got, "hello Atza|tok-") {
		t.Fatalf("payload %q; events %s", got, e)
	}
}

// A proxied runtime has no credential store: the proxy holds them.
func TestProxiedRuntimeHasNoStore(t *testing.T) {
	rt := newRuntime(t, ss.Config{Proxy: "unix:@ss-auth-test-no-such-proxy"})
	if rt.Blobs() != nil {
		t.Fatal("Blobs on a proxied runtime")
	}
	if _, err := rt.Refresher("lwa"); !errors.Is(err, ss.ErrProxiedAuth) {
		t.Fatalf("Refresher: %v", err)
	}
}
