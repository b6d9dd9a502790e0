package test

import (
	"context"
	"testing"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/testutil"
)

// recvBoth runs scenario once reading with Events and once with Recv
// and checks that both saw want, so the same events in the same order.
func recvBoth(t *testing.T, scenario func(t *testing.T, rec func(*testing.T, *ss.Stream) *recorder) *recorder, want ...string) {
	t.Helper()
	for _, rec := range []func(*testing.T, *ss.Stream) *recorder{record, recordRecv} {
		scenario(t, rec).expect(want...)
	}
}

// TestRecvOrderRaw: plain raw (Recv reads the socket itself) and raw over
// TLS (Recv drains the queue) give the states and payload Events gives.
func TestRecvOrderRaw(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "tls"}[tlsOn], func(t *testing.T) {
			var srv *testutil.Server
			var ca *testutil.CA
			if tlsOn {
				ca = testutil.NewCA(t)
				srv = tlsEcho(t, ca)
			} else {
				srv = testutil.Listen(t, "tcp", "", nil, testutil.Echo)
			}
			st := rawType("echo", "127.0.0.1", srv.Port())
			if tlsOn {
				st.TLS = true
				st.TrustStore = ca.TrustStore("ts")
				st.TrustStoreName = "ts"
			}
			rt := newRuntime(t, ss.Config{Policy: newPolicy(st)})
			recvBoth(t, func(t *testing.T, rec func(*testing.T, *ss.Stream) *recorder) *recorder {
				ctx := context.Background()
				s, err := rt.Create(ctx, "echo")
				if err != nil {
					t.Fatal(err)
				}
				r := rec(t, s)
				n := 0
				for _, m := range []string{"one", "two", "three"} {
					if err := s.Send(ctx, []byte(m)); err != nil {
						t.Fatal(err)
					}
					n += len(m)
					r.untilBytes(wait, n)
				}
				if err := s.Destroy(ctx); err != nil {
					t.Fatal(err)
				}
				r.closed(wait)
				return r
			}, "CREATING", "POLL", "CONNECTING", "CONNECTED", `rx(0,"onetwothree")`, "DISCONNECTED", "DESTROYING")
		})
	}
}
