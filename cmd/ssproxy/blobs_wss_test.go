package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/testutil"
	"github.com/securestreams/ss/internal/testutil/ssproxytest"
	"github.com/securestreams/ss/mqtttest"
)

// TestDaemonAWSProfileMQTTOverWSS: ssproxy with -aws-profile and
// -mqtt-client-id reaches a broker as MQTT over WSS with presigned URLs
// (checked by the SDK-side verifier); two proxied streams share its one
// WebSocket connection, and a message published by one reaches the other.
func TestDaemonAWSProfileMQTTOverWSS(t *testing.T) {
	b, err := mqtttest.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = b.Close(ctx)
	})
	creds := aws.Credentials{AccessKeyID: "AKIDPROXY", SecretAccessKey: "proxy-secret"}
	ca := testutil.NewCA(t)
	front := testutil.NewWSFront(t, b.Addr, "/mqtt", ca.Issue(t, "127.0.0.1").ServerTLS(),
		&testutil.PresignVerifier{Keys: map[string]aws.Credentials{creds.AccessKeyID: creds}})
	dir := t.TempDir()
	credFile, pfile := filepath.Join(dir, "credentials"), filepath.Join(dir, "p.json")
	writeFile(t, credFile, fmt.Sprintf("[device]\naws_access_key_id = %s\naws_secret_access_key = %s\n", creds.AccessKeyID, creds.SecretAccessKey))
	st := `{%q: {"endpoint": "127.0.0.1", "port": %d, "protocol": "mqtt", "tls": true, "tls_trust_store": "iot",
      "mqtt_ws_path": "/mqtt", "use_auth": "aws", "aws_region": "region", "metadata": [{"region": ""}], "mqtt_qos": 1, %s}}`
	writeFile(t, pfile, fmt.Sprintf(`{"schema-version": 1,
  "certs": [{"iot_ca": %q}], "trust_stores": [{"name": "iot", "stack": ["iot_ca"]}],
  "auth": [{"name": "aws", "type": "sigv4", "blob": 0}],
  "s": [%s, %s]}`, base64.StdEncoding.EncodeToString(ca.DER),
		fmt.Sprintf(st, "sub", front.Port(), `"mqtt_subscribe": "dev/+/t"`),
		fmt.Sprintf(st, "pub", front.Port(), `"mqtt_topic": "dev/d9/t"`)))

	addr := ssproxytest.AbstractAddress()
	env := []string{asDaemon + "=1", "AWS_SHARED_CREDENTIALS_FILE=" + credFile, "AWS_CONFIG_FILE=" + filepath.Join(dir, "none"),
		"AWS_EC2_METADATA_DISABLED=true", "AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_SESSION_TOKEN=", "AWS_PROFILE="}
	d := ssproxytest.Start(t, os.Args[0], addr, env, "-policy", pfile, "-listen", addr, "-aws-profile", "device", "-mqtt-client-id", "dev-9")
	d.WaitLog(t, 10*time.Second, "ssproxy: listening")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rt, err := ss.New(ctx, ss.Config{Proxy: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	sub, err := rt.Create(ctx, "sub", ss.WithMetadata("region", "us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Connect(); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, sub, func(ev ss.Event) bool { return ev.State == ss.Connected })
	pub, err := rt.Create(ctx, "pub", ss.WithMetadata("region", "us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Send(ctx, []byte("via the proxy")); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, pub, func(ev ss.Event) bool { return ev.State == ss.QoSAckRemote })
	waitFor(ctx, t, sub, func(ev ss.Event) bool { return ev.Kind == ss.PayloadEvent && string(ev.Payload) == "via the proxy" })
	if h, r := front.Handshakes.Load(), front.Refused.Load(); h != 1 || r != 0 {
		t.Fatalf("front: %d handshakes, %d refused; want one shared connection", h, r)
	}
	if cs := b.Connects(); len(cs) != 1 || cs[0].ClientID != "dev-9" {
		t.Fatalf("CONNECTs %+v", cs)
	}
	for _, s := range []*ss.Stream{sub, pub} {
		go func() {
			for range s.Events() {
			}
		}()
		_ = s.Destroy(ctx)
	}
	if code, _ := d.Stop(t, syscall.SIGTERM, 5*time.Second); code != 0 {
		t.Errorf("SIGTERM: exit %d", code)
	}
}

func waitFor(ctx context.Context, t *testing.T, s *ss.Stream, pred func(ss.Event) bool) {
	t.Helper()
	var seen []string
	for {
		select {
		case ev, ok := <-s.Events():
			if !ok {
				t.Fatalf("stream ended; saw %v", seen)
			}
			if ev.Kind == ss.StateEvent {
				seen = append(seen, ev.State.String())
				if ev.Err != nil {
					seen = append(seen, ev.Err.Error())
				}
			}
			if pred(ev) {
				return
			}
		case <-ctx.Done():
			t.Fatalf("timed out; saw %v", seen)
		}
	}
}
