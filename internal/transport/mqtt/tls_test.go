package mqtt

import (
	"crypto/tls"
	"net"
	"path/filepath"
	"sync"
	"testing"

	"github.com/securestreams/ss/internal/testutil"
	"github.com/securestreams/ss/mqtttest"
	"github.com/securestreams/ss/policy"
)

// tlsBroker serves MQTT over TLS on loopback with a certificate for
// 127.0.0.1 from a fresh CA; alpn receives the protocols each client offered.
func tlsBroker(t *testing.T) (*mqtttest.Broker, *testutil.CA, func() [][]string) {
	ca := testutil.NewCA(t)
	leaf := ca.Issue(t, "127.0.0.1", "localhost")
	cfg := leaf.ServerTLS()
	var mu sync.Mutex
	var offered [][]string
	cfg.GetConfigForClient = func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
		mu.Lock()
		offered = append(offered, hi.SupportedProtos)
		mu.Unlock()
		return nil, nil
	}
	cfg.NextProtos = []string{"x-amzn-mqtt-ca"}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := mqtttest.Serve(ln)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(ctx10(t)) })
	return b, ca, func() [][]string { mu.Lock(); defer mu.Unlock(); return offered }
}

func TestTLSTrustStoreAndALPN(t *testing.T) {
	b, ca, offered := tlsBroker(t)
	env := fakeEnv()
	p := NewProtocol(env, Options{})
	defer p.Close(ctx10(t))
	ts := ca.TrustStore("ts")
	host, port, _ := net.SplitHostPort(b.Addr)
	for _, aws := range []bool{false, true} {
		st := streamtype("tls", "mqtts://"+host+":"+port, func(st *policy.Streamtype) {
			st.TrustStoreName, st.TrustStore, st.AWSIoT = "ts", ts, aws
			st.MQTTTopic, st.MQTTQoS = "secure", 1
		})
		r := start(p, env, st, nil)
		r.tx.send("x")
		equal(t, r.sink.waitN(t, 2), []string{"CONNECTED", "QOS_ACK_REMOTE(1)"})
		r.stop(t)
	}
	o := offered()
	if len(o) != 2 || len(o[0]) != 0 || len(o[1]) != 1 || o[1][0] != "x-amzn-mqtt-ca" {
		t.Fatalf("ALPN offered %v (want none without aws_iot, x-amzn-mqtt-ca with it)", o)
	}

	// Another CA's trust store: the TLS handshake fails the attempt.
	other := testutil.NewCA(t).TrustStore("other")
	st := streamtype("tls2", "mqtts://"+b.Addr, func(st *policy.Streamtype) {
		st.TrustStoreName, st.TrustStore, st.MQTTTopic = "other", other, "x"
	})
	r := start(p, env, st, nil)
	if res := r.wait(t); res.Err == nil || len(r.sink.events()) != 0 {
		t.Fatalf("wrong CA: %v %v", res.Err, r.sink.events())
	}
}

func TestUnixSocketBroker(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mqtt.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := mqtttest.Serve(ln)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx10(t))
	env := fakeEnv()
	p := NewProtocol(env, Options{})
	defer p.Close(ctx10(t))
	r := start(p, env, streamtype("unix", "+"+path, func(st *policy.Streamtype) { st.MQTTTopic, st.MQTTQoS = "u", 1 }), nil)
	r.tx.send("x")
	equal(t, r.sink.waitN(t, 2), []string{"CONNECTED", "QOS_ACK_REMOTE(1)"})
	r.stop(t)
}
