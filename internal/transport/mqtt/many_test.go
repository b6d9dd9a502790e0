package mqtt

import (
	"fmt"
	"testing"
	"time"

	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

func TestManyStreamsOneConnection(t *testing.T) {
	f := newFixture(t)
	// 1,000 SUBACKs from one broker take a while on a loaded machine.
	env := (&transport.Env{MQTTAckTimeout: 30 * time.Second, ConnectTimeout: 30 * time.Second}).Defaults()
	st := streamtype("many", f.broker.Addr, func(st *policy.Streamtype) {
		st.Metadata = []*policy.MetadataItem{{Name: "i"}}
		st.MQTTSubscribe, st.MQTTQoS = "many/${i}", 1
	})
	const n = 1000
	t0 := time.Now()
	rs := make([]*running, n)
	for i := range rs {
		rs[i] = start(f.p, env, st, map[string]string{"i": fmt.Sprint(i)})
	}
	for _, r := range rs {
		r.sink.waitN(t, 1)
	}
	t.Logf("%d streams connected in %v", n, time.Since(t0))
	if c := len(f.broker.Connects()); c != 1 {
		t.Fatalf("%d broker connections", c)
	}
	f.broker.Publish("many/7", []byte("x"), false, 1)
	rs[7].sink.waitN(t, 2)
	t0 = time.Now()
	for _, r := range rs {
		r.cancel()
	}
	for _, r := range rs {
		r.wait(t)
	}
	t.Logf("%d streams detached in %v", n, time.Since(t0))
}
