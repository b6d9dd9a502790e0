package auth_test

import (
	"context"
	"fmt"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/testutil"
)

// rotatingKeys is how many rotatingCreds the wssSetup front accepts.
const rotatingKeys = 16

// rotatingCreds is the i-th credential of rotatingProvider: its own key id,
// secret and session token.
func rotatingCreds(i int) aws.Credentials {
	return aws.Credentials{AccessKeyID: fmt.Sprintf("AKIDROT%d", i), SecretAccessKey: fmt.Sprintf("rot-secret-%d", i),
		SessionToken: fmt.Sprintf("rot/session+%d", i)}
}

// rotatingProvider hands out rotatingCreds(1), (2), ... one per Retrieve,
// each already expired, so the store's credentials cache asks again at the
// next signing.
type rotatingProvider struct{ n atomic.Int32 }

func (p *rotatingProvider) Retrieve(context.Context) (aws.Credentials, error) {
	i := int(p.n.Add(1))
	if i > rotatingKeys {
		return aws.Credentials{}, fmt.Errorf("rotatingProvider: more than %d Retrieve calls", rotatingKeys)
	}
	c := rotatingCreds(i)
	c.Source = "rotating"
	c.CanExpire = true
	c.Expires = time.Now()
	return c, nil
}

// Each connection attempt of an MQTT-over-WSS stream presigns its URL
// anew (docs/auth.md): after the front drops the connection, the
// reconnection's handshake carries a URL signed with the credentials
// current at that attempt. The provider's credentials change at every
// Retrieve, so a URL presigned once and reused (or signed with cached
// credentials) shows up as two equal URLs or equal key ids.
func TestMQTTOverWSSRepresignedPerAttempt(t *testing.T) {
	b, front, p := wssSetup(t)
	rt := newRuntime(t, ss.Config{Policy: p, MQTTClientID: "dev-d3"})
	prov := &rotatingProvider{}
	if err := rt.Blobs().SetCredentials(ctxT(t), 0, prov); err != nil {
		t.Fatal(err)
	}
	sub := createWith(t, rt, "sub", ss.WithMetadata("region", "eu-west-1"))
	if err := sub.s.Connect(); err != nil {
		t.Fatal(err)
	}
	sub.until(10*time.Second, ss.Connected)
	if h := front.Handshakes.Load(); h != 1 {
		t.Fatalf("front: %d handshakes before the drop, want 1", h)
	}
	front.Drop()
	if !testutil.WaitFor(ctxT(t), func() bool { return front.Handshakes.Load() >= 2 && b.Connected() >= 1 }) {
		t.Fatalf("no second handshake after the drop: %d handshakes, %d refused; events %s",
			front.Handshakes.Load(), front.Refused.Load(), sub)
	}
	if r := front.Refused.Load(); r != 0 {
		t.Fatalf("front refused %d handshakes", r)
	}
	urls := front.URLs()
	if len(urls) < 2 {
		t.Fatalf("front recorded %d URLs, want 2", len(urls))
	}
	first, second := query(t, urls[0]), query(t, urls[1])
	if urls[0] == urls[1] {
		t.Fatalf("the reconnection reused the presigned URL %s", urls[0])
	}
	for _, k := range []string{"X-Amz-Credential", "X-Amz-Signature", "X-Amz-Security-Token"} {
		if first.Get(k) == "" || first.Get(k) == second.Get(k) {
			t.Errorf("%s: first %q, second %q; want two different non-empty values", k, first.Get(k), second.Get(k))
		}
	}
	if n := prov.n.Load(); n < 2 {
		t.Fatalf("credentials retrieved %d times, want one per attempt", n)
	}
}

func query(t *testing.T, uri string) url.Values {
	t.Helper()
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}
