package proxy

import (
	"sync"
	"testing"
	"time"

	"github.com/securestreams/ss/internal/event"
)

// TestServerRxflowHysteresis: a fast onward producer and a slow client.
// The link stops draining the onward events when on_above bytes wait for
// the client and resumes only below off_below; nothing is lost or
// reordered, and the queue never exceeds on_above plus one event.
func TestServerRxflowHysteresis(t *testing.T) {
	const (
		onAbove  = 8192
		offBelow = 2048
		chunk    = 1000
		events   = 3000 // 3 MB, well beyond the socket buffers
	)
	type mark struct {
		pause  bool
		queued int
	}
	var mu sync.Mutex
	var marks []mark
	testHookRxflow = func(pause bool, queued int) {
		mu.Lock()
		marks = append(marks, mark{pause, queued})
		mu.Unlock()
	}
	defer func() { testHookRxflow = nil }()

	f := newFakeOnward(map[string]OnwardInfo{"fh": {ProxyBuflen: 4096, RxflowOnAbove: onAbove, RxflowOffBelow: offBelow}})
	srv, name := startServer(t, f, nil)
	r := dialRaw(t, name)
	r.create("fh")
	s := <-f.created
	go func() {
		for i := range events {
			p := make([]byte, chunk)
			for j := range p {
				p[j] = byte(i*chunk + j)
			}
			s.ev <- event.Event{Kind: event.PayloadEvent, Payload: p}
		}
	}()
	r.slowRx(events*chunk, 64<<10, func(i int) byte { return byte(i) })
	mu.Lock()
	defer mu.Unlock()
	pauses, resumes := 0, 0
	for i, m := range marks {
		if m.pause {
			pauses++
			if m.queued < onAbove {
				t.Errorf("mark %d: paused with %d queued (< on_above %d)", i, m.queued, onAbove)
			}
			if i > 0 && marks[i-1].pause {
				t.Errorf("mark %d: paused twice", i)
			}
		} else {
			resumes++
			if m.queued >= offBelow {
				t.Errorf("mark %d: resumed with %d queued (>= off_below %d)", i, m.queued, offBelow)
			}
		}
	}
	if pauses == 0 || resumes == 0 {
		t.Fatalf("pauses %d, resumes %d: the slow client never filled the queue", pauses, resumes)
	}
	bound := onAbove + chunk + HeaderLen + PayloadHeaderLen
	if hw := srv.QueueHighWater(); hw > bound || hw < onAbove {
		t.Fatalf("QueueHighWater %d, want in [%d, %d]", hw, onAbove, bound)
	}
	t.Logf("%d pauses, %d resumes, high water %d", pauses, resumes, srv.QueueHighWater())
}

// slowRx reads RX_PAYLOAD frames until total payload bytes came, pausing
// 2 ms after every pause bytes (a slow client), and checks byte i is
// want(i).
func (r *rawClient) slowRx(total, pause int, want func(i int) byte) {
	r.t.Helper()
	got := 0
	for got < total {
		m := r.next()
		rx, ok := m.(*RxPayload)
		if !ok {
			r.t.Fatalf("got %#v, want RX_PAYLOAD", m)
		}
		for j, b := range rx.Payload {
			if b != want(got+j) {
				r.t.Fatalf("byte %d: got %d want %d", got+j, b, want(got+j))
			}
		}
		got += len(rx.Payload)
		if got%pause < len(rx.Payload) {
			time.Sleep(2 * time.Millisecond)
		}
	}
}

// TestDeliverWaitsForReady: a deliver that must wait for the link to have
// written CREATE_RESULT (waitReady) waits until setReady, and a channel
// is made only for such a wait, not per link.
func TestDeliverWaitsForReady(t *testing.T) {
	l := &link{}
	if l.readyWait != nil {
		t.Fatal("a wait channel before anyone waits")
	}
	done := make(chan struct{})
	go func() {
		l.waitReady()
		close(done)
	}()
	select {
	case <-done:
		t.Fatal("waitReady returned before setReady")
	case <-time.After(50 * time.Millisecond):
	}
	l.setReady()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("waitReady still waiting after setReady")
	}
	l.waitReady() // ready: returns at once
	if l.readyWait != nil {
		t.Error("the wait channel kept after setReady")
	}
}
