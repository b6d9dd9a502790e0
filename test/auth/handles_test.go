package auth_test

import (
	"errors"
	"testing"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/auth"
)

// TestRefresherHandle: Runtime.Refresher returns the scheme's refresher
// through the public auth.Refresher interface, and a plain nil (not a typed
// nil in the interface) with the error for an unknown scheme. With no LWA
// credentials in the store, a forced refresh fails permanently and Err
// says why; SetLWA through the public Store fixes it.
func TestRefresherHandle(t *testing.T) {
	srv := newServers(t, 3600)
	rt := newRuntime(t, ss.Config{Policy: lwaPolicy(t, srv.port())})
	if r, err := rt.Refresher("no-such-scheme"); r != nil || err == nil {
		t.Fatalf("unknown scheme: %v (nil interface: %v), %v", r, r == nil, err)
	}
	r, err := rt.Refresher("lwa")
	if err != nil || r == nil || r.Scheme() != "lwa" {
		t.Fatalf("Refresher(lwa) = %v, %v", r, err)
	}
	r.Refresh()
	deadline := time.Now().Add(10 * time.Second)
	var re *auth.RefreshError
	for !errors.As(r.Err(), &re) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if re == nil || !re.Permanent || re.Scheme != "lwa" || !errors.Is(r.Err(), auth.ErrNoCredentials) {
		t.Fatalf("Err after a refresh without credentials: %v", r.Err())
	}
	before := r.Refreshes()
	var st auth.Store = rt.Blobs()
	if err := st.SetLWA(ctxT(t), 1, lwaCreds); err != nil {
		t.Fatal(err)
	}
	for (r.Err() != nil || st.Token(1).Value == nil) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if r.Err() != nil || string(st.Token(1).Value) != "Atza|tok-1" || r.Refreshes() <= before {
		t.Fatalf("after SetLWA: err %v, token %q, refreshes %d (before %d)", r.Err(), st.Token(1).Value, r.Refreshes(), before)
	}
	if err := st.SetLWA(ctxT(t), auth.Slots, lwaCreds); !errors.Is(err, auth.ErrSlot) {
		t.Fatalf("SetLWA on slot %d: %v, want ErrSlot", auth.Slots, err)
	}
}
