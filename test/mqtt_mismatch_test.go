package test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/connmgr"
	"github.com/securestreams/ss/policy"
)

// TestMQTTMismatchAtCreate: a streamtype whose mqtt_keep_alive differs from
// the one that opened the shared broker connection cannot be created: Create
// fails with an error naming both streamtypes and the key (errors.Is
// connmgr.ErrMismatch), and no stream exists. The open stream is untouched.
func TestMQTTMismatchAtCreate(t *testing.T) {
	b := mqttBroker(t, "127.0.0.1:0")
	a := mqttType("ka30", b.Addr, func(st *policy.Streamtype) { st.NailedUp, st.MQTTKeepAlive = true, 30 })
	c := mqttType("ka60", b.Addr, func(st *policy.Streamtype) { st.NailedUp, st.MQTTKeepAlive = true, 60 })
	same := mqttType("ka30b", b.Addr, func(st *policy.Streamtype) { st.MQTTKeepAlive = 30 })
	rt := newRuntime(t, ss.Config{Policy: newPolicy(a, c, same)})
	ctx := context.Background()
	s, err := rt.Create(ctx, "ka30")
	if err != nil {
		t.Fatal(err)
	}
	r := record(t, s)
	r.untilState(wait, ss.Connected)

	s2, err := rt.Create(ctx, "ka60")
	if err == nil {
		s2.Destroy(ctx)
		t.Fatal("Create of a mismatching streamtype succeeded")
	}
	if !errors.Is(err, connmgr.ErrMismatch) {
		t.Fatalf("err = %v, want connmgr.ErrMismatch", err)
	}
	for _, want := range []string{`"ka30"`, `"ka60"`, "mqtt_keep_alive"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not name %s", err, want)
		}
	}
	if n := rt.Stats().Streams; n != 1 {
		t.Fatalf("Streams = %d after the failed Create, want 1", n)
	}
	// A streamtype that agrees joins the connection.
	s3, err := rt.Create(ctx, "ka30b")
	if err != nil {
		t.Fatalf("agreeing streamtype: %v", err)
	}
	r3 := record(t, s3)
	if err := s3.Connect(); err != nil {
		t.Fatal(err)
	}
	r3.untilState(wait, ss.Connected)
	for _, x := range []*recorder{r3, r} {
		if err := x.s.Destroy(ctx); err != nil {
			t.Fatal(err)
		}
		x.closed(wait)
	}
	r.expect("CREATING", "CONNECTING", "CONNECTED", "DISCONNECTED", "DESTROYING")
	r3.expect("CREATING", "CONNECTING", "CONNECTED", "DISCONNECTED", "DESTROYING")
}
