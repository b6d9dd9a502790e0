package mqtt

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

// TestMemPerStream logs the heap and stack cost of a subscribed stream
// (including the test harness and the broker's side of the subscription).
func TestMemPerStream(t *testing.T) {
	f := newFixture(t)
	env := (&transport.Env{MQTTAckTimeout: 30 * time.Second, ConnectTimeout: 30 * time.Second}).Defaults()
	st := streamtype("many", f.broker.Addr, func(st *policy.Streamtype) {
		st.Metadata = []*policy.MetadataItem{{Name: "i"}}
		st.MQTTSubscribe, st.MQTTQoS = "many/${i}", 1
	})
	r0 := start(f.p, env, st, map[string]string{"i": "x"})
	r0.sink.waitN(t, 1)
	const n = 1000
	rs := make([]*running, n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range rs {
		rs[i] = start(f.p, env, st, map[string]string{"i": fmt.Sprint(i)})
	}
	for _, r := range rs {
		r.sink.waitN(t, 1)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)

	t.Logf("heap %d B/stream, stacks %d B/stream, goroutines %d", (int64(after.HeapAlloc)-int64(before.HeapAlloc))/n, (int64(after.StackInuse)-int64(before.StackInuse))/n, runtime.NumGoroutine())
	for _, r := range append(rs, r0) {
		r.cancel()
	}
	for _, r := range append(rs, r0) {
		r.wait(t)
	}
}
