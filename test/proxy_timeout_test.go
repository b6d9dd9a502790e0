package test

import (
	"context"
	"testing"
	"time"

	"github.com/securestreams/ss"
)

// TestProxyStartTimeoutZero: StartTimeout(0) on a proxied stream whose
// streamtype the client's policy does not have is sent as TIMEOUT_UPDATE 0
// and the proxy applies its own streamtype's timeout_ms (docs/wire.md §3.7).
func TestProxyStartTimeoutZero(t *testing.T) {
	srv := hangingServer(t)
	st := rawType("slow", "127.0.0.1", srv.Port())
	st.TLS = true
	st.TimeoutMS = 80
	pol := newPolicy(st)
	run := func(t *testing.T, addr string) {
		rt := newRuntime(t, ss.Config{Proxy: addr}) // no local policy
		ctx := context.Background()
		s, err := rt.Create(ctx, "slow")
		if err != nil {
			t.Fatal(err)
		}
		r := record(t, s)
		start := time.Now()
		if err := s.StartTimeout(0); err != nil {
			t.Fatal(err)
		}
		if err := s.Send(ctx, []byte("x")); err != nil {
			t.Fatal(err)
		}
		r.untilState(wait, ss.Timeout)
		if d := time.Since(start); d < 80*time.Millisecond {
			t.Fatalf("TIMEOUT after %v, before the proxy's timeout_ms", d)
		}
		s.Destroy(ctx)
		r.closed(wait)
		r.expect("CREATING", "POLL", "CONNECTING", "TIMEOUT", "DESTROYING")
	}
	t.Run("proxied", func(t *testing.T) {
		addr, _ := inProcessProxy(t, pol)
		run(t, addr)
	})
	t.Run("ssproxy", func(t *testing.T) {
		bin := buildSSProxy(t)
		if bin == "" {
			t.Skip("-short")
		}
		run(t, startSSProxy(t, bin, pol))
	})
}
