package hostile

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/testutil"
	"github.com/securestreams/ss/mqtttest"
	"github.com/securestreams/ss/policy"
)

// mqttBroker starts an embedded mochi broker with a capture hook.
func mqttBroker(t *testing.T) (*mqtttest.Broker, *testutil.MQTTCapture) {
	t.Helper()
	b, err := mqtttest.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		b.Close(ctx)
	})
	cap := testutil.NewMQTTCapture()
	if err := b.Server.AddHook(cap, nil); err != nil {
		t.Fatal(err)
	}
	return b, cap
}

func mqttPolicy(t *testing.T, port int) *policy.Policy {
	return parse(t, `{"s": [{"m": {
		"protocol": "mqtt", "endpoint": "127.0.0.1", "port": `+strconv.Itoa(port)+`,
		"mqtt_topic": "dev/${id}/up", "mqtt_subscribe": "dev/${id}/down", "mqtt_qos": 1,
		"mqtt_will_topic": "dev/${id}/will", "mqtt_will_message": "gone ${id}",
		"metadata": [{"id": ""}]
	}}]}`)
}

// TestMQTTInjection: values substituted into topics reach the broker (as
// it read them off the network, before its own validation) exactly, or
// are refused at Create naming the item, with no CONNECT, PUBLISH or
// SUBSCRIBE at all: no NUL, no wildcard, no control character, valid
// UTF-8, at most 65535 bytes.
func TestMQTTInjection(t *testing.T) {
	for _, c := range []struct {
		name, id, refused, reason string
	}{
		{name: "plain", id: "a1"},
		{name: "level separator", id: "a/b"},
		{name: "non-ASCII UTF-8", id: "ü€"},
		{name: "plus wildcard", id: "+", refused: "id", reason: "'+' at byte 0 (a wildcard)"},
		{name: "hash wildcard", id: "x/#", refused: "id", reason: "'#' at byte 2 (a wildcard)"},
		{name: "NUL", id: "a\x00b", refused: "id", reason: "NUL (0x00) at byte 1"},
		{name: "CRLF", id: "a\r\nb", refused: "id", reason: "control character 0x0d at byte 1"},
		{name: "non-UTF-8", id: "a\xff", refused: "id", reason: "invalid UTF-8 at byte 1"},
		{name: "oversize", id: strings.Repeat("x", 70000), refused: "id", reason: "70000 bytes, the limit is 65535"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, cap := mqttBroker(t)
			rt := newRuntime(t, ss.Config{Policy: mqttPolicy(t, b.Port())})
			err, states := transact(t, rt, "m", []metadata{{"id", c.id}}, []byte("hi"))
			if c.refused != "" {
				wantRefused(t, err, c.refused, c.reason)
				ids, wills, pubs, filters := cap.Snapshot()
				if len(ids)+len(wills)+len(pubs)+len(filters) != 0 {
					t.Fatalf("a refused stream reached the broker: %q %q %q %q", ids, wills, pubs, filters)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			pubs, err := cap.WaitPublishes(ctx, 1)
			if err != nil {
				t.Fatalf("%v (states %v)", err, states)
			}
			_, wills, _, filters := cap.Snapshot()
			if want := "dev/" + c.id + "/up"; len(pubs) != 1 || pubs[0] != want {
				t.Fatalf("publishes %q, want [%q]", pubs, want)
			}
			if want := "dev/" + c.id + "/down"; len(filters) != 1 || filters[0] != want {
				t.Fatalf("filters %q, want [%q]", filters, want)
			}
			if want := "dev/" + c.id + "/will"; len(wills) != 1 || wills[0] != want {
				t.Fatalf("will topics %q, want [%q]", wills, want)
			}
		})
	}
}

// TestMQTTClientID: a client id with NUL or invalid UTF-8 fails the attempt
// before any CONNECT is written.
func TestMQTTClientID(t *testing.T) {
	for _, id := range []string{"a\x00b", "\xff"} {
		b, cap := mqttBroker(t)
		rt := newRuntime(t, ss.Config{Policy: mqttPolicy(t, b.Port()), MQTTClientID: id})
		err, states := transact(t, rt, "m", []metadata{{"id", "x"}}, []byte("hi"))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range states {
			if s == ss.Connected {
				t.Fatalf("client id %q: CONNECTED", id)
			}
		}
		if ids, _, _, _ := cap.Snapshot(); len(ids) != 0 {
			t.Fatalf("client id %q: broker saw CONNECT %q", id, ids)
		}
	}
}
