package hostile

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/sstest"
	"github.com/securestreams/ss/policy"
)

// wait bounds every wait for an event (the machine may be loaded).
const wait = 20 * time.Second

// parse parses a policy document that must be valid.
func parse(t *testing.T, js string) *policy.Policy {
	t.Helper()
	p, diags, err := policy.Parse([]byte(js), policy.Options{})
	if err != nil {
		t.Fatalf("policy: %v %v", err, diags)
	}
	return p
}

// newRuntime is sstest.NewRuntime.
func newRuntime(t *testing.T, cfg ss.Config) *ss.Runtime { return sstest.NewRuntime(t, cfg) }

// metadata is one metadata value to set, in order.
type metadata struct{ name, value string }

// transact creates a stream of streamtype name with md, asks for a
// transaction and waits until the attempt is over (a final HTTP state, a
// failure, or for ws/mqtt CONNECTED followed by send when send != nil).
// It returns Create's error (no stream then) and the states seen.
func transact(t *testing.T, rt *ss.Runtime, name string, md []metadata, send []byte) (error, []ss.State) {
	t.Helper()
	ctx := context.Background()
	var opts []ss.Option
	for _, m := range md {
		opts = append(opts, ss.WithMetadata(m.name, m.value))
	}
	s, err := rt.Create(ctx, name, opts...)
	if err != nil {
		return err, nil
	}
	defer func() {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		s.Destroy(dctx)
		for range s.Events() {
		}
	}()
	if send != nil {
		go s.Send(ctx, send)
	} else if err := s.RequestTx(); err != nil {
		t.Fatal(err)
	}
	var states []ss.State
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-s.Events():
			if !ok {
				return nil, states
			}
			if ev.Kind != ss.StateEvent {
				continue
			}
			states = append(states, ev.State)
			switch ev.State {
			case ss.QoSAckRemote, ss.QoSNackRemote, ss.Disconnected, ss.AllRetriesFailed, ss.Unreachable:
				return nil, states
			}
		case <-timer.C:
			t.Fatalf("no final state after %v; states %v", wait, states)
		}
	}
}

// wantRefused checks that err is a wire-value refusal naming item and
// containing reason.
func wantRefused(t *testing.T, err error, item, reason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want a refusal of metadata %q (%s)", item, reason)
	}
	var ve *ss.ValueError
	if !errors.Is(err, ss.ErrWireValue) || !errors.As(err, &ve) {
		t.Fatalf("err = %v; want a *ss.ValueError wrapping ss.ErrWireValue", err)
	}
	if ve.Item != item || !strings.Contains(err.Error(), strconv.Quote(item)) || !strings.Contains(err.Error(), reason) {
		t.Fatalf("err = %q (item %q); want item %q named and %q", err, ve.Item, item, reason)
	}
}

// checkRawHead fails when raw (every byte one connection sent) is not
// exactly one HTTP/1.1 request head with no body: one request line, CRLF
// line ends only, no NUL, no header named X-Injected*, nothing after the
// blank line.
func checkRawHead(t *testing.T, raw string) {
	t.Helper()
	end := strings.Index(raw, "\r\n\r\n")
	switch {
	case end < 0:
		t.Fatalf("no complete request head:\n%q", raw)
	case end+4 != len(raw):
		t.Fatalf("%d bytes after the request head (smuggled):\n%q", len(raw)-end-4, raw)
	case strings.Count(raw, " HTTP/1.1\r\n") != 1:
		t.Fatalf("not exactly one request line:\n%q", raw)
	case strings.IndexByte(raw, 0) >= 0:
		t.Fatalf("NUL on the wire:\n%q", raw)
	}
	lines := strings.Split(raw[:end], "\r\n")
	for _, l := range lines {
		if strings.ContainsAny(l, "\r\n") {
			t.Fatalf("bare CR or LF in line %q", l)
		}
		if strings.HasPrefix(strings.ToLower(l), "x-injected") {
			t.Fatalf("injected header line %q reached the server", l)
		}
	}
}

// checkDecodedHeaders fails when a decoded request has a header named
// X-Injected* or a value with CR, LF or NUL.
func checkDecodedHeaders(t *testing.T, lines []string) {
	t.Helper()
	for _, l := range lines {
		if strings.HasPrefix(l, "x-injected") || strings.ContainsAny(l, "\r\n\x00") {
			t.Fatalf("smuggled header line %q reached the server", l)
		}
	}
}
