package proxyhostile

import (
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/securestreams/ss/internal/proxy"
	"github.com/securestreams/ss/internal/testutil/ssproxytest"
)

// controlBatch is 64 KiB-ish of alternating ONWARD_CONNECT (3 bytes) and
// TIMEOUT_UPDATE (7 bytes) frames, and the number of frames in it.
func controlBatch() ([]byte, int) {
	var b []byte
	n := 0
	for len(b) < 64<<10 {
		b, _ = (&proxy.OnwardConnect{}).AppendBinary(b)
		b, _ = (&proxy.TimeoutUpdate{Millis: uint32(60000 + n)}).AppendBinary(b)
		n += 2
	}
	return b, n
}

// TestControlFlood is issue 8's case: 20 links each send millions of small
// control frames (ONWARD_CONNECT, TIMEOUT_UPDATE) and never read. The
// proxy coalesces them (ServerLimits.ControlRate), so its RSS stays under
// 64 MB, a well-behaved client's round trips keep working throughout, and
// SIGTERM sent in the middle of a flood stops it within 2 s.
//
// By default each link sends 150 000 frames; SS_HOSTILE_FULL=1 runs the
// full 3 000 000 per link.
func TestControlFlood(t *testing.T) {
	const links = 20
	perLink := 150_000
	if os.Getenv("SS_HOSTILE_FULL") == "1" {
		perLink = 3_000_000
	}
	d := startProxy(t)
	good := echoLink(t, d.Address)
	var flood []*ssproxytest.Link
	for range links {
		flood = append(flood, echoLink(t, d.Address))
	}
	rss := watchRSS(d.Cmd.Process.Pid)
	pr := startProbe(good)
	batch, per := controlBatch()
	start := time.Now()
	var sent atomic.Int64
	var wg sync.WaitGroup
	for _, l := range flood {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < perLink; n += per {
				l.Conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
				if _, err := l.Conn.Write(batch); err != nil {
					t.Errorf("flood write: %v", err)
					return
				}
				sent.Add(int64(per))
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	// The proxy has read everything once a round trip queued behind the
	// flood on a flood link completes.
	for _, l := range flood[:2] {
		if err := l.RoundTrip([]byte("after the flood"), 60*time.Second); err != nil {
			t.Fatalf("a flood link after its flood: %v", err)
		}
	}
	drained := time.Since(start)
	pr.finish(t, 1)
	t.Logf("%d links × %d control frames (%d in all, %d MB) written in %v, applied in %v",
		links, perLink, sent.Load(), int64(len(batch))*sent.Load()/int64(per)>>20, took, drained)

	// Then an endless flood on every link: round trips go on for 1.5 s,
	// and SIGTERM arrives in the middle of it.
	pr = startProbe(good)
	stopFlood := make(chan struct{})
	for _, l := range flood {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stopFlood:
					return
				default:
				}
				l.Conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if _, err := l.Conn.Write(batch); err != nil {
					return // the proxy has gone
				}
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	// Both cores are busy flooding (the test's writers) and coalescing
	// (the proxy): round trips take tens of ms here.
	pr.finish(t, 5)
	peak := rss.finish(t)
	t.Logf("peak RSS over both floods %.1f MB", float64(peak)/(1<<20))
	code, stopTook := d.Stop(t, syscall.SIGTERM, 10*time.Second)
	close(stopFlood)
	wg.Wait()
	// Exit status 1 means the shutdown deadline (1.5 s) cut a slow
	// graceful stop short: still in time.
	if stopTook > stopBound || (code != 0 && code != 1) {
		t.Errorf("SIGTERM during a flood: exit %d after %v, want 0 (or 1 at the deadline) within %v; log tail:\n%s", code, stopTook, stopBound, tail(d.Log(), 20))
	}
	t.Logf("SIGTERM during the flood: exit %d after %v", code, stopTook)
}
