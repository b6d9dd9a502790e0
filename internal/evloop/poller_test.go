//go:build linux

package evloop

import (
	"bytes"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestPollerWaitsInNetpoller: an idle Poller's goroutine waits in the Go
// runtime's netpoller ("IO wait"), not in a blocking epoll_wait on a thread
// of its own ("syscall"): a thread in the system call would keep its P, and
// the goroutines a handler had just started or woken (queued on that P)
// would wait for the scheduler's monitor to take it back (PERFORMANCE.md,
// "Proxied 16 KiB tx, in-process").
func TestPollerWaitsInNetpoller(t *testing.T) {
	p := newPoller(t)
	c, cc := pair(t, p)
	read := make(chan struct{}, 1)
	c.SetHandlers(func() {
		c.Read(make([]byte, 16))
		read <- struct{}{}
	}, func() {})
	c.SetNonblockingReads(true)
	if !c.Park() {
		t.Fatal("Park failed")
	}
	cc.Write([]byte("x")) // the loop has dispatched once before it is checked
	<-read
	var state string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if state = pollerState(); state != "" && state != "running" && state != "runnable" {
			break
		}
	}
	if state != "IO wait" {
		t.Fatalf("idle Poller goroutine is in state %q, want \"IO wait\"", state)
	}
}

// pollerState returns the scheduling state of the goroutine running
// Poller.loop, as a goroutine dump prints it ("" when there is none).
func pollerState() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if !strings.Contains(g, "evloop.(*Poller).loop") {
			continue
		}
		head, _, _ := strings.Cut(g, "\n")
		_, state, _ := strings.Cut(head, "[")
		state, _, _ = strings.Cut(state, "]")
		state, _, _ = strings.Cut(state, ",") // "IO wait, 2 minutes"
		return state
	}
	return ""
}

// TestBusyPollerParks: a Poller that busy-polls dispatches what arrives
// while it spins (every round trip after the first lands in the spin),
// parks in the netpoller ("IO wait") once the spin ends with nothing
// found, and Close ends a spin at once rather than after BusyPoll.
func TestBusyPollerParks(t *testing.T) {
	for _, spin := range []time.Duration{20 * time.Millisecond, time.Minute} {
		t.Run(spin.String(), func(t *testing.T) {
			p, err := NewPollerConfig(Config{BusyPoll: spin})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			c, cc := pair(t, p)
			ended := make(chan error, 1)
			echoInline(c, ended)
			if !c.Park() {
				t.Fatal("Park failed")
			}
			cc.SetReadDeadline(time.Now().Add(10 * time.Second))
			for i := range 50 {
				msg := []byte{byte(i), 'x'}
				got := make([]byte, len(msg))
				if _, err := cc.Write(msg); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(cc, got); err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("round trip %d: %q, %v", i, got, err)
				}
			}
			if spin == time.Minute {
				// Still spinning: Close must end it through the wake pipe.
				closed := make(chan struct{})
				go func() { p.Close(); close(closed) }()
				select {
				case <-closed:
				case <-time.After(10 * time.Second):
					t.Fatal("Close waited for the busy poll to end")
				}
				return
			}
			var state string
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
				if state = pollerState(); state == "IO wait" {
					break
				}
			}
			if state != "IO wait" {
				t.Fatalf("idle busy-polling Poller goroutine is in state %q, want \"IO wait\"", state)
			}
		})
	}
}
