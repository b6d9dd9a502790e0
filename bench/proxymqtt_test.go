package bench

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/proxy"
	"github.com/securestreams/ss/policy"
)

// BenchmarkProxyLinkMemoryMQTT: 10,000 streams through one ssproxy. Raw
// onward streams cost the proxy two descriptors each, and the container's
// hard limit is 20,000 per process, so these streams are MQTT streams that
// share one broker connection (the broker runs in this process): the
// proxy holds 10,000 client links and one onward socket. Reports the time
// to bring all n to CONNECTED (subscribed) and the proxy's RSS per stream,
// with the event loop (/ssproxy) and with -event-loop off (/ssproxy-net).
// Run with -benchtime 1x.
//
//	go test -run '^$' -bench 'ProxyLinkMemoryMQTT' -benchtime 1x ./bench/
func BenchmarkProxyLinkMemoryMQTT(b *testing.B) {
	br := mqttBenchBroker(b)
	st := &policy.Streamtype{Name: "many", Protocol: policy.MQTT, Endpoint: br.Addr, ClientCert: -1, NailedUp: true,
		MQTTSubscribe: "many/t", MQTTQoS: 0}
	pol := &policy.Policy{SchemaVersion: 1, Streamtypes: []*policy.Streamtype{st}}
	for _, n := range []int{10000} {
		for _, mode := range []string{"ssproxy", "ssproxy-net"} {
			b.Run(fmt.Sprintf("n=%d/mode=%s", n, mode), func(b *testing.B) {
				flags := []string{"-release-idle", "200ms", "-max-links", "20000",
					"-max-links-per-uid", "20000", "-max-links-per-process", "20000", "-max-queued-bytes", "-1"}
				if mode == "ssproxy-net" {
					flags = append(flags, "-event-loop", "off")
				}
				addr, pid := pxBinary(b, pol, flags...)
				name := strings.TrimPrefix(addr, "unix:")
				time.Sleep(300 * time.Millisecond)
				rss0 := pxRSS(b, pid)
				links := make([]net.Conn, n)
				start := time.Now()
				for i := range links {
					links[i] = pxLinkOf(b, name, "many")
				}
				setup := time.Since(start)
				idle := pxRSS(b, pid)
				for _, c := range links {
					c.Close()
				}
				b.ReportMetric(setup.Seconds(), "setup-s")
				b.ReportMetric(float64(idle-rss0)/float64(n), "idle-RSS-B/stream")
				b.ReportMetric(float64(idle)/(1<<20), "RSS-MB")
			})
		}
	}
}

// pxLinkOf opens a hand-written SSSv1 link for streamtype and waits until
// it is CONNECTED.
func pxLinkOf(b *testing.B, name, streamtype string) net.Conn {
	c, err := net.Dial("unix", name)
	if err != nil {
		b.Fatal(err)
	}
	st, _ := (&proxy.StreamType{Name: streamtype, Credit: proxy.DefaultCredit}).AppendBinary(nil)
	c.Write(st)
	dec := proxy.NewDecoder(c, proxy.ProxyToClient, proxy.Limits{})
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	for {
		m, err := dec.Next()
		if err != nil {
			b.Fatalf("link: %v", err)
		}
		if cr, ok := m.(*proxy.CreateResult); ok && !cr.OK() {
			b.Fatal("CREATE_RESULT failed")
		}
		if cs, ok := m.(*proxy.ConnState); ok && cs.State == event.Connected {
			c.SetReadDeadline(time.Time{})
			return c
		}
	}
}
