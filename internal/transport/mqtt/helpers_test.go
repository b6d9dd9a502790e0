package mqtt

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/mqtttest"
	"github.com/securestreams/ss/policy"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// tmpl compiles a "${name}" template against st's metadata (the policy
// parser does this at load time).
func tmpl(st *policy.Streamtype, raw string) *policy.Template {
	if raw == "" {
		return nil
	}
	t := &policy.Template{Raw: raw}
	for raw != "" {
		i := strings.Index(raw, "${")
		if i < 0 {
			t.Parts = append(t.Parts, policy.TemplatePart{Lit: raw, Meta: -1})
			break
		}
		if i > 0 {
			t.Parts = append(t.Parts, policy.TemplatePart{Lit: raw[:i], Meta: -1})
		}
		j := strings.IndexByte(raw[i:], '}')
		name := raw[i+2 : i+j]
		t.Parts = append(t.Parts, policy.TemplatePart{Lit: name, Meta: st.MetadataIndex(name)})
		raw = raw[i+j+1:]
	}
	return t
}

// streamtype builds an mqtt streamtype for broker addr; edit adjusts it
// before templates are compiled.
func streamtype(name, addr string, edit func(st *policy.Streamtype)) *policy.Streamtype {
	st := &policy.Streamtype{Name: name, Protocol: policy.MQTT, Endpoint: addr, ClientCert: -1}
	if edit != nil {
		edit(st)
	}
	for i, m := range st.Metadata {
		m.Index = i
	}
	st.EndpointTmpl = tmpl(st, st.Endpoint)
	st.MQTTTopicTmpl = tmpl(st, st.MQTTTopic)
	st.MQTTSubscribeTmpl = tmpl(st, st.MQTTSubscribe)
	st.MQTTWillTopicTmpl = tmpl(st, st.MQTTWillTopic)
	st.MQTTWillMessageTmpl = tmpl(st, st.MQTTWillMessage)
	st.MQTTBirthTopicTmpl = tmpl(st, st.MQTTBirthTopic)
	st.MQTTBirthMessageTmpl = tmpl(st, st.MQTTBirthMessage)
	return st
}

// recSink records what a transport reports, as strings.
type recSink struct {
	mu   sync.Mutex
	evs  []string
	rx   [][]byte
	ch   chan struct{}
	hold chan struct{}    // when not nil, Rx waits for it (slow consumer)
	errs map[uint32]error // the causes of states with an ack (StateErr)
}

func newSink() *recSink { return &recSink{ch: make(chan struct{}, 1)} }

func (r *recSink) add(s string) {
	r.mu.Lock()
	r.evs = append(r.evs, s)
	r.mu.Unlock()
	select {
	case r.ch <- struct{}{}:
	default:
	}
}

func (r *recSink) State(s event.State, ack uint32) {
	if ack != 0 {
		r.add(fmt.Sprintf("%s(%d)", s, ack))
		return
	}
	r.add(s.String())
}

// StateErr records the cause beside the state (the runtime's sink puts it
// in Event.Err).
func (r *recSink) StateErr(s event.State, ack uint32, err error) {
	r.mu.Lock()
	if r.errs == nil {
		r.errs = map[uint32]error{}
	}
	r.errs[ack] = err
	r.mu.Unlock()
	r.State(s, ack)
}

// err is the cause recorded for message ack.
func (r *recSink) err(ack uint32) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.errs[ack]
}

func (r *recSink) SetMetadata(name, value string) { r.add(fmt.Sprintf("meta(%s=%s)", name, value)) }
func (r *recSink) Rx(ctx context.Context, data []byte, flags event.Flags) error {
	if r.hold != nil {
		select {
		case <-r.hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.mu.Lock()
	r.rx = append(r.rx, data)
	r.mu.Unlock()
	r.add(fmt.Sprintf("rx(%s,%q)", flags, data))
	return nil
}
func (r *recSink) ValidityConfirmed()   {}
func (r *recSink) Logger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func (r *recSink) events() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.evs...)
}

// waitFor waits until cond holds for the events recorded so far.
func (r *recSink) waitFor(t *testing.T, what string, cond func(evs []string) bool) []string {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		evs := r.events()
		if cond(evs) {
			return evs
		}
		select {
		case <-r.ch:
		case <-deadline:
			t.Fatalf("timed out waiting for %s; events: %v", what, evs)
		}
	}
}

// waitN waits for at least n events.
func (r *recSink) waitN(t *testing.T, n int) []string {
	t.Helper()
	return r.waitFor(t, fmt.Sprintf("%d events", n), func(evs []string) bool { return len(evs) >= n })
}

func count(evs []string, prefix string) int {
	n := 0
	for _, e := range evs {
		if strings.HasPrefix(e, prefix) {
			n++
		}
	}
	return n
}

// txq is a scripted TxSource.
type txq struct{ ch chan transport.Chunk }

func newTx() *txq { return &txq{ch: make(chan transport.Chunk, 8)} }

func (q *txq) Next(ctx context.Context) (transport.Chunk, error) {
	select {
	case c := <-q.ch:
		return c, nil
	case <-ctx.Done():
		return transport.Chunk{}, ctx.Err()
	}
}
func (q *txq) Pending() bool  { return len(q.ch) > 0 }
func (q *txq) LenHint() int64 { return -1 }

// send queues one whole message.
func (q *txq) send(p string) {
	q.ch <- transport.Chunk{Data: []byte(p), Flags: event.SOM | event.EOM, Len: -1}
}

// running is one Run in progress.
type running struct {
	cancel context.CancelFunc
	done   chan transport.Result
	sink   *recSink
	tx     *txq
	id     uint64
}

func (r *running) stop(t *testing.T) transport.Result {
	t.Helper()
	r.cancel()
	return r.wait(t)
}

func (r *running) wait(t *testing.T) transport.Result {
	t.Helper()
	select {
	case res := <-r.done:
		return res
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return")
	}
	return transport.Result{}
}

var streamIDs atomic.Uint64

func start(p *Protocol, env *transport.Env, st *policy.Streamtype, meta map[string]string) *running {
	return startAs(p, env, st, meta, streamIDs.Add(1))
}

// startAs runs an attempt of the stream with the given id.
func startAs(p *Protocol, env *transport.Env, st *policy.Streamtype, meta map[string]string, id uint64) *running {
	md := make([]transport.MetadataValue, len(st.Metadata))
	for k, v := range meta {
		md[st.MetadataIndex(k)] = transport.MetadataValue{Value: v, Set: true}
	}
	r := &running{done: make(chan transport.Result, 1), sink: newSink(), tx: newTx(), id: id}
	a := &transport.Attempt{Type: st, Metadata: md, Tx: r.tx, Env: env, StreamID: id}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- p.Run(ctx, a, r.sink) }()
	return r
}

type fixture struct {
	t      *testing.T
	broker *mqtttest.Broker
	env    *transport.Env
	p      *Protocol
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	b, err := mqtttest.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	env := (&transport.Env{MQTTAckTimeout: 3 * time.Second, ConnectTimeout: 3 * time.Second}).Defaults()
	f := &fixture{t: t, broker: b, env: env, p: NewProtocol(env, Options{})}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := f.p.Close(ctx); err != nil {
			t.Errorf("protocol close: %v", err)
		}
		if err := f.broker.Close(ctx); err != nil {
			t.Errorf("broker close: %v", err)
		}
	})
	return f
}

func ctx10(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func equal(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("events:\n got %v\nwant %v", got, want)
	}
}
