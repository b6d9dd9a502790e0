package connmgr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/securestreams/ss/internal/testutil"
	"github.com/securestreams/ss/mqtttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, testutil.GoleakOptions()...) }

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		filter, topic string
		want          bool
	}{
		{"a/b", "a/b", true},
		{"a/b", "a/c", false},
		{"a/+", "a/b", true},
		{"a/+", "a/b/c", false},
		{"a/+", "a", false},
		{"a/+", "a/", true},
		{"+/+", "/x", true},
		{"+", "a", true},
		{"+", "a/b", false},
		{"#", "a/b/c", true},
		{"#", "a", true},
		{"a/#", "a", true},
		{"a/#", "a/b/c", true},
		{"a/#", "ab", false},
		{"a/+/c/#", "a/x/c", true},
		{"a/+/c/#", "a/x/c/d/e", true},
		{"a/+/c/#", "a/x/d", false},
		{"#", "$SYS/x", false},
		{"+/x", "$SYS/x", false},
		{"$SYS/#", "$SYS/x", true},
		{"a//b", "a//b", true},
		{"a/+/b", "a//b", true},
		{"a/b/c", "a/b", false},
		{"a/b", "a/b/c", false},
	} {
		if got := Match(tc.filter, tc.topic); got != tc.want {
			t.Errorf("Match(%q, %q) = %v", tc.filter, tc.topic, got)
		}
	}
}

func TestValidFilterAndTopic(t *testing.T) {
	for _, f := range []string{"a", "#", "+", "a/+/b", "a/#", "+/+/#"} {
		if err := ValidFilter(f); err != nil {
			t.Errorf("%q: %v", f, err)
		}
	}
	for _, f := range []string{"", "a#", "a/#/b", "a+/b", "a/b+", "a/\x00", "a/\xff"} {
		if err := ValidFilter(f); !errors.Is(err, ErrTopic) {
			t.Errorf("%q accepted", f)
		}
	}
	if err := ValidTopic("a/b", 256); err != nil {
		t.Error(err)
	}
	for _, tp := range []string{"", "a/+", "#", strings.Repeat("x", 257), "a\x00b", "a/\xc3"} {
		if err := ValidTopic(tp, 256); !errors.Is(err, ErrTopic) {
			t.Errorf("%q accepted", tp)
		}
	}
}

func FuzzMatch(f *testing.F) {
	f.Add("a/+/#", "a/b/c")
	f.Fuzz(func(t *testing.T, filter, topic string) {
		if ValidFilter(filter) != nil || ValidTopic(topic, 65535) != nil {
			return
		}
		// A filter without wildcards matches exactly itself.
		if !strings.ContainsAny(filter, "+#") && Match(filter, topic) != (filter == topic) {
			t.Fatalf("Match(%q, %q)", filter, topic)
		}
		if topic[0] != '$' && !Match("#", topic) {
			t.Fatalf("# does not match %q", topic)
		}
	})
}

func broker(t *testing.T) *mqtttest.Broker {
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
	return b
}

func request(addr, streamtype string, keepAlive uint16) Request {
	return Request{
		Identity: Identity{Network: "tcp", Address: addr, ClientCert: -1},
		Settings: Settings{Streamtype: streamtype, KeepAlive: keepAlive, CleanStart: true},
		Dial: func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		},
	}
}

func closeManager(t *testing.T, m *Manager) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentAttachSharesOneConnection(t *testing.T) {
	b := broker(t)
	m := New(Config{})
	defer closeManager(t, m)
	ctx := context.Background()
	var wg sync.WaitGroup
	atts := make([]*Attachment, 50)
	errs := make([]error, 50)
	for i := range atts {
		wg.Go(func() {
			atts[i], errs[i] = m.Attach(ctx, request(b.Addr, "s", 0))
			if errs[i] == nil {
				errs[i] = atts[i].Subscribe(ctx, fmt.Sprintf("t/%d", i%5), 1, true)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := len(b.Connects()); n != 1 {
		t.Fatalf("%d broker connections", n)
	}
	b.Publish("t/3", []byte("x"), false, 1)
	for i, a := range atts {
		want := 0
		if i%5 == 3 {
			want = 1
		}
		if want == 1 {
			select {
			case <-a.Ready():
			case <-time.After(5 * time.Second):
				t.Fatalf("attachment %d got nothing", i)
			}
		}
		time.Sleep(time.Millisecond)
		if got := len(a.Receive(nil)); got != want {
			t.Fatalf("attachment %d got %d messages, want %d", i, got, want)
		}
	}
	// Unsubscribing a shared filter keeps the broker subscription until its
	// last subscriber leaves.
	for i, a := range atts {
		if err := a.Unsubscribe(ctx); err != nil {
			t.Fatal(err)
		}
		a.Detach()
		if i == 44 {
			if u := b.Unsubscribes(); len(u) != 0 {
				t.Fatalf("early unsubscribes %v", u)
			}
		}
	}
	if u := b.Unsubscribes(); len(u) != 5 {
		t.Fatalf("unsubscribes %v", u)
	}
	if !testutil.WaitFor(ctxT(t), func() bool { return b.Disconnects() == 1 && m.Connections() == 0 }) {
		t.Fatal("connection not closed after the last detach")
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestMismatchNamesBothStreamtypes(t *testing.T) {
	b := broker(t)
	m := New(Config{})
	defer closeManager(t, m)
	a, err := m.Attach(ctxT(t), request(b.Addr, "first", 10))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Detach()
	for _, tc := range []struct {
		edit func(*Request)
		key  string
	}{
		{func(r *Request) { r.Settings.KeepAlive = 11 }, "mqtt_keep_alive"},
		{func(r *Request) { r.Settings.CleanStart = false }, "mqtt_clean_start"},
		{func(r *Request) { r.Settings.Will = &Will{Topic: "w"} }, "mqtt_will_topic"},
		{func(r *Request) { r.Settings.Password = "p" }, "password"},
	} {
		req := request(b.Addr, "second", 10)
		tc.edit(&req)
		_, err := m.Attach(ctxT(t), req)
		var me *MismatchError
		if !errors.As(err, &me) || me.Key != tc.key || !strings.Contains(err.Error(), `"first"`) || !strings.Contains(err.Error(), `"second"`) {
			t.Fatalf("%s: %v", tc.key, err)
		}
		if err2 := m.CheckCompatible(req.Identity, req.Settings); !errors.As(err2, &me) {
			t.Fatalf("CheckCompatible %s: %v", tc.key, err2)
		}
	}
	// A different identity (client id) is a different connection: no conflict.
	req := request(b.Addr, "third", 99)
	req.Identity.ClientID = "other"
	a2, err := m.Attach(ctxT(t), req)
	if err != nil {
		t.Fatal(err)
	}
	a2.Detach()
}

func TestSlowConsumerEvicted(t *testing.T) {
	b := broker(t)
	m := New(Config{RxQueue: 4, RxStall: 200 * time.Millisecond})
	defer closeManager(t, m)
	ctx := ctxT(t)
	slow, err := m.Attach(ctx, request(b.Addr, "slow", 0))
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Detach()
	fast, err := m.Attach(ctx, request(b.Addr, "fast", 0))
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Detach()
	if err := slow.Subscribe(ctx, "x", 0, true); err != nil {
		t.Fatal(err)
	}
	if err := fast.Subscribe(ctx, "x", 0, true); err != nil {
		t.Fatal(err)
	}
	// The fast one keeps reading.
	var mu sync.Mutex
	got := 0
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-fast.Ready():
				mu.Lock()
				got += len(fast.Receive(nil))
				mu.Unlock()
			case <-stop:
				return
			}
		}
	}()
	for i := range 20 {
		b.Publish("x", []byte{byte(i)}, false, 0)
	}
	select {
	case <-slow.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("slow consumer not evicted")
	}
	if !errors.Is(slow.Err(), ErrSlowConsumer) {
		t.Fatalf("err %v", slow.Err())
	}
	if !testutil.WaitFor(ctx, func() bool { mu.Lock(); defer mu.Unlock(); return got == 20 }) {
		t.Fatalf("fast consumer got %d of 20", got)
	}
	close(stop)
	<-done
	if fast.Err() != nil {
		t.Fatal(fast.Err())
	}
}

func TestConnectionLostEndsAttachments(t *testing.T) {
	b := broker(t)
	m := New(Config{})
	defer closeManager(t, m)
	a, err := m.Attach(ctxT(t), request(b.Addr, "s", 0))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Detach()
	b.Close(ctxT(t))
	select {
	case <-a.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("not told")
	}
	if !errors.Is(a.Err(), ErrConnectionLost) {
		t.Fatal(a.Err())
	}
	if _, err := m.Attach(ctxT(t), request(b.Addr, "s", 0)); err == nil {
		t.Fatal("attached to a stopped broker")
	}
}

func TestCloseWithAttachments(t *testing.T) {
	b := broker(t)
	m := New(Config{})
	a, err := m.Attach(ctxT(t), request(b.Addr, "s", 0))
	if err != nil {
		t.Fatal(err)
	}
	closeManager(t, m)
	closeManager(t, m) // idempotent
	<-a.Done()
	a.Detach()
	if _, err := m.Attach(ctxT(t), request(b.Addr, "s", 0)); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
}

// TestResumedSessionKeepsEarlyMessages: a broker resuming a persistent
// session sends what it queued right after CONNACK, before the stream has
// registered its filter again; the message must still reach it.
func TestResumedSessionKeepsEarlyMessages(t *testing.T) {
	b := broker(t)
	m := New(Config{})
	defer closeManager(t, m)
	ctx := ctxT(t)
	req := request(b.Addr, "persist", 0)
	req.Identity.ClientID, req.Settings.CleanStart = "ss-persist", false
	a, err := m.Attach(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if a.SessionPresent() {
		t.Fatal("fresh session reported present")
	}
	if err := a.Subscribe(ctx, "p/#", 1, true); err != nil {
		t.Fatal(err)
	}
	a.Detach() // DISCONNECT, subscription kept in the session
	if !testutil.WaitFor(ctx, func() bool { return b.Connected() == 0 }) {
		t.Fatal("not disconnected")
	}
	if err := b.Publish("p/1", []byte("while away"), false, 1); err != nil {
		t.Fatal(err)
	}
	a2, err := m.Attach(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	defer a2.Detach()
	if !a2.SessionPresent() {
		t.Fatal("session not resumed")
	}
	time.Sleep(50 * time.Millisecond) // let the queued message arrive first
	if err := a2.Subscribe(ctx, "p/#", 1, false); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a2.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("queued message not delivered")
	}
	if msgs := a2.Receive(nil); len(msgs) != 1 || string(msgs[0].Payload) != "while away" {
		t.Fatalf("got %+v", msgs)
	}
}
