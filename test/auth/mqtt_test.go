package auth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/auth"
	"github.com/securestreams/ss/internal/testutil"
	"github.com/securestreams/ss/mqtttest"
	"github.com/securestreams/ss/policy"
)

func parsePolicy(t *testing.T, js string) *policy.Policy {
	t.Helper()
	p, diags, err := policy.Parse([]byte(js), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diags {
		t.Errorf("policy: %v", d)
	}
	return p
}

// A jwt scheme on an MQTT streamtype: the stream waits for the device-signed
// JWT and sends it as the CONNECT password; the broker's copy verifies.
func TestJWTAsMQTTPassword(t *testing.T) {
	b, err := mqtttest.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close(ctxT(t)) })
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p := parsePolicy(t, fmt.Sprintf(`{"schema-version": 1,
  "auth": [{"name": "dev", "type": "jwt", "blob": 2}],
  "s": [{"tele": {"endpoint": "127.0.0.1", "port": %d, "protocol": "mqtt", "use_auth": "dev",
      "mqtt_topic": "t", "mqtt_qos": 1}}]}`, b.Port()))
	rt := newRuntime(t, ss.Config{Policy: p, MQTTClientID: "dev-7", MQTTUsername: "unused",
		Auth: ss.AuthConfig{JWT: map[string]auth.JWT{"dev": {Key: key, Audience: []string{"broker"}, Lifetime: time.Hour}}}})
	if err := rt.Blobs().SetDevice(ctxT(t), auth.Device{Serial: "SN-7"}); err != nil {
		t.Fatal(err)
	}
	e := create(t, rt, "tele")
	if err := e.s.Send(ctxT(t), []byte("x")); err != nil {
		t.Fatal(err)
	}
	e.until(10*time.Second, ss.QoSAckRemote)
	cs := b.Connects()
	if len(cs) != 1 {
		t.Fatalf("%d CONNECTs", len(cs))
	}
	tok, err := jwt.Parse([]byte(cs[0].Password), jwt.WithKey(jwa.ES256(), key.Public()), jwt.WithAudience("broker"))
	if err != nil {
		t.Fatalf("the CONNECT password is not a valid JWT: %v", err)
	}
	if sub, _ := tok.Subject(); sub != "SN-7" {
		t.Fatalf("sub %q", sub)
	}
}

// AWS IoT custom authorizer on 443: ALPN "mqtt" and the user name carrying
// the authorizer name, token and signature.
func TestCustomAuthorizerConnect(t *testing.T) {
	ca := testutil.NewCA(t)
	cfg := ca.Issue(t, "127.0.0.1").ServerTLS()
	var mu sync.Mutex
	var alpn []string
	cfg.NextProtos = []string{"mqtt", "x-amzn-mqtt-ca"}
	cfg.GetConfigForClient = func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
		mu.Lock()
		alpn = hi.SupportedProtos
		mu.Unlock()
		return nil, nil
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := mqtttest.Serve(ln)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close(ctxT(t)) })
	user := auth.CustomAuthorizer{Username: "dev", Name: "my-auth", TokenKeyName: "tok", Token: "t0k", Signature: "c2ln"}.MQTTUsername()
	p := parsePolicy(t, fmt.Sprintf(`{"schema-version": 1,
  "certs": [{"ca": %q}], "trust_stores": [{"name": "ts", "stack": ["ca"]}],
  "s": [{"tele": {"endpoint": "127.0.0.1", "port": %d, "protocol": "mqtt", "tls": true, "tls_trust_store": "ts",
      "aws_iot": true, "mqtt_topic": "t", "mqtt_qos": 1}}]}`, base64.StdEncoding.EncodeToString(ca.DER), ln.Addr().(*net.TCPAddr).Port))
	rt := newRuntime(t, ss.Config{Policy: p, MQTTClientID: "dev-8", MQTTUsername: user})
	e := create(t, rt, "tele")
	if err := e.s.Send(ctxT(t), []byte("x")); err != nil {
		t.Fatal(err)
	}
	e.until(10*time.Second, ss.QoSAckRemote)
	mu.Lock()
	defer mu.Unlock()
	if len(alpn) != 1 || alpn[0] != "mqtt" {
		t.Fatalf("ALPN offered %v, want [mqtt]", alpn)
	}
	if cs := b.Connects(); len(cs) != 1 || cs[0].Username != "dev?x-amz-customauthorizer-name=my-auth&x-amz-customauthorizer-signature=c2ln&tok=t0k" {
		t.Fatalf("CONNECT %+v", cs)
	}
}
