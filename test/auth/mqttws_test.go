package auth_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/auth"
	"github.com/securestreams/ss/internal/testutil"
	"github.com/securestreams/ss/mqtttest"
	"github.com/securestreams/ss/policy"
)

var (
	iotCreds = aws.Credentials{AccessKeyID: "AKIDIOT", SecretAccessKey: "iot-secret", SessionToken: "iot/session+token"}
	// badCreds has its own key id: the SDK signer caches derived keys by
	// key id, so a wrong secret must not share one with good credentials.
	badCreds = aws.Credentials{AccessKeyID: "AKIDBAD", SecretAccessKey: "the-real-secret"}
)

// wssSetup: a mochi broker behind a TLS WebSocket front that verifies
// presigned URLs, and a policy with a publisher and a subscriber reaching
// it as MQTT over WSS with SigV4 (AWS IoT style).
func wssSetup(t *testing.T) (*mqtttest.Broker, *testutil.WSFront, *policy.Policy) {
	t.Helper()
	b, err := mqtttest.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close(ctxT(t)) })
	ca := testutil.NewCA(t)
	leaf := ca.Issue(t, "127.0.0.1")
	v := &testutil.PresignVerifier{Keys: map[string]aws.Credentials{iotCreds.AccessKeyID: iotCreds, badCreds.AccessKeyID: badCreds}}
	for i := 1; i <= rotatingKeys; i++ {
		c := rotatingCreds(i)
		v.Keys[c.AccessKeyID] = c
	}
	front := testutil.NewWSFront(t, fmt.Sprintf("127.0.0.1:%d", b.Port()), "/mqtt", leaf.ServerTLS(), v)
	js := fmt.Sprintf(`{
  "release": "t", "product": "t", "schema-version": 1,
  "retry": [{"default": {"backoff": [100, 200], "conceal": 3, "jitterpc": 0}}],
  "certs": [{"iot_ca": %q}],
  "trust_stores": [{"name": "iot", "stack": ["iot_ca"]}],
  "auth": [{"name": "aws", "type": "sigv4", "blob": 0}],
  "s": [
    {"sub": {"endpoint": "127.0.0.1", "port": %[2]d, "protocol": "mqtt", "tls": true, "tls_trust_store": "iot",
      "mqtt_ws_path": "/mqtt", "use_auth": "aws", "aws_region": "region", "metadata": [{"region": ""}],
      "mqtt_subscribe": "dev/+/telemetry", "mqtt_qos": 1, "retry": "default", "aws_iot": true}},
    {"pub": {"endpoint": "127.0.0.1", "port": %[2]d, "protocol": "mqtt", "tls": true, "tls_trust_store": "iot",
      "mqtt_ws_path": "/mqtt", "use_auth": "aws", "aws_region": "region", "metadata": [{"region": ""}],
      "mqtt_topic": "dev/d1/telemetry", "mqtt_qos": 1, "retry": "default", "aws_iot": true}}
  ]}`, base64.StdEncoding.EncodeToString(ca.DER), front.Port())
	p, diags, err := policy.Parse([]byte(js), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diags {
		t.Errorf("policy: %v", d)
	}
	return b, front, p
}

// Two streams reach the broker as MQTT over WSS with presigned URLs and
// share one WebSocket connection; a message published by one arrives at
// the other.
func TestMQTTOverWSSSharedByTwoStreams(t *testing.T) {
	b, front, p := wssSetup(t)
	rt := newRuntime(t, ss.Config{Policy: p, MQTTClientID: "dev-d1"})
	if err := rt.Blobs().SetCredentials(ctxT(t), 0, auth.StaticCredentials(iotCreds.AccessKeyID, iotCreds.SecretAccessKey, iotCreds.SessionToken)); err != nil {
		t.Fatal(err)
	}
	sub := createWith(t, rt, "sub", ss.WithMetadata("region", "eu-west-1"))
	if err := sub.s.Connect(); err != nil {
		t.Fatal(err)
	}
	sub.until(10*time.Second, ss.Connected)
	pub := createWith(t, rt, "pub", ss.WithMetadata("region", "eu-west-1"))
	if err := pub.s.Send(ctxT(t), []byte("21.5C")); err != nil {
		t.Fatal(err)
	}
	pub.until(10*time.Second, ss.QoSAckRemote)
	deadline := time.Now().Add(10 * time.Second)
	for sub.payload() != "21.5C" {
		if time.Now().After(deadline) {
			t.Fatalf("subscriber got %q; events %s", sub.payload(), sub)
		}
		sub.next(time.Until(deadline))
	}
	if h, r := front.Handshakes.Load(), front.Refused.Load(); h != 1 || r != 0 {
		t.Fatalf("front: %d handshakes, %d refused; want 1 shared connection", h, r)
	}
	if n := len(b.Connects()); n != 1 {
		t.Fatalf("broker saw %d CONNECTs, want 1", n)
	}
}

// Wrong credentials: the front refuses the handshake (403) and the stream
// reports UNREACHABLE with the status in Event.Err.
func TestMQTTOverWSSBadSignatureRefused(t *testing.T) {
	_, front, p := wssSetup(t)
	rt := newRuntime(t, ss.Config{Policy: p, MQTTClientID: "dev-d2"})
	if err := rt.Blobs().SetCredentials(ctxT(t), 0, auth.StaticCredentials(badCreds.AccessKeyID, "wrong-secret", "")); err != nil {
		t.Fatal(err)
	}
	sub := createWith(t, rt, "sub", ss.WithMetadata("region", "eu-west-1"))
	if err := sub.s.Connect(); err != nil {
		t.Fatal(err)
	}
	ev := sub.until(10*time.Second, ss.Unreachable)
	var se *ss.StatusError
	if !errors.As(ev.Err, &se) || se.Code != 403 {
		t.Fatalf("UNREACHABLE cause %v", ev.Err)
	}
	if front.Refused.Load() == 0 || front.Handshakes.Load() != 0 {
		t.Fatalf("front: %d handshakes, %d refused", front.Handshakes.Load(), front.Refused.Load())
	}
}
