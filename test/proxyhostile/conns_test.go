package proxyhostile

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/proxy"
	"github.com/securestreams/ss/internal/testutil/ssproxytest"
)

// TestThousandsOfConnections: another local process opens 3000 links, a
// third one 400 more. The per-process limit (256 here) and the per-uid
// limit (512 here; the test's own link counts against it too) admit exactly that
// many and refuse the rest with CREATE_RESULT failed; the proxy stays under
// its memory bound, the well-behaved client keeps working, and SIGTERM with
// 500 links open stops it within 2 s.
func TestThousandsOfConnections(t *testing.T) {
	d := startProxy(t, "-max-links-per-process", "256", "-max-links-per-uid", "512")
	good := echoLink(t, d.Address)
	rss := watchRSS(d.Cmd.Process.Pid)
	pr := startProbe(good)
	c1 := startChild(t, "conns", d.Address, "3000")
	if got, want := c1.line(t), fmt.Sprintf("created=%d refused=%d failed=0", 256, 3000-256); got != want {
		t.Errorf("first process: %s, want %s", got, want)
	}
	time.Sleep(1100 * time.Millisecond) // refusals are logged once a second
	c2 := startChild(t, "conns", d.Address, "400")
	if got, want := c2.line(t), fmt.Sprintf("created=%d refused=%d failed=0", 512-257, 400-(512-257)); got != want {
		t.Errorf("second process: %s, want %s (uid limit 512, 257 links already)", got, want)
	}
	d.WaitLog(t, time.Second, "level=WARN", "link refused", "MaxLinksPerProcess 256")
	d.WaitLog(t, 5*time.Second, "level=WARN", "link refused", "MaxLinksPerUID 512")
	if n := d.CountLog("link refused"); n > 10 {
		t.Errorf("%d refusal log lines for 2889 refusals in a few seconds: the log is not rate-limited", n)
	}
	time.Sleep(200 * time.Millisecond)
	pr.finish(t, 5)
	rss.finish(t)
	stopInTime(t, d)
}

// TestHalfOpen: connections that never send STREAMTYPE are closed after
// the setup timeout; links whose client half-closes are ended at once;
// links whose client sends and never reads stop being read once their
// buffers are full (the client's writes block) and hold bounded memory.
// The well-behaved client keeps working and SIGTERM stops the proxy with
// all of them open.
func TestHalfOpen(t *testing.T) {
	d := startProxy(t, "-setup-timeout", "1s")
	good := echoLink(t, d.Address)
	rss := watchRSS(d.Cmd.Process.Pid)
	pr := startProbe(good)

	// Idle connections: closed by the setup timeout.
	var idle []*ssproxytest.Link
	for range 200 {
		idle = append(idle, ssproxytest.MustDial(t, d.Address))
	}
	// Half-closed links: ended at once.
	var half []*ssproxytest.Link
	for range 20 {
		l := ssproxytest.MustDial(t, d.Address)
		l.MustCreate(t, "echo")
		l.Conn.(*net.UnixConn).CloseWrite()
		half = append(half, l)
	}
	// Links that send to the echo peer and never read.
	var deaf []*ssproxytest.Link
	blocked := make(chan time.Duration, 20)
	var wg sync.WaitGroup
	chunk, _ := (&proxy.TxPayload{Flags: event.SOM | event.EOM, Payload: make([]byte, 16<<10)}).AppendBinary(nil)
	for range 20 {
		l := echoLink(t, d.Address)
		deaf = append(deaf, l)
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			for sent := 0; sent < 256<<20; sent += len(chunk) {
				l.Conn.SetWriteDeadline(time.Now().Add(time.Second))
				if _, err := l.Conn.Write(chunk); err != nil {
					blocked <- time.Since(start)
					return
				}
			}
			blocked <- -1
		}()
	}
	for _, l := range half {
		if err := l.WaitClosed(5 * time.Second); err != nil {
			t.Errorf("half-closed link: %v", err)
		}
	}
	start := time.Now()
	for _, l := range idle {
		if err := l.WaitClosed(10 * time.Second); err != nil {
			t.Fatalf("idle connection: %v", err)
		}
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("idle connections closed after %v, setup timeout 1s", took)
	}
	wg.Wait()
	for range deaf {
		if d := <-blocked; d < 0 {
			t.Errorf("a client that never reads sent 256 MB without blocking")
		}
	}
	pr.finish(t, 5)
	rss.finish(t)
	stopInTime(t, d)
}

// TestSlowloris: clients that send a frame one byte per second (during
// setup, and on a created link) are closed once the setup timeout or the
// frame timeout passes, while a well-behaved client keeps working.
func TestSlowloris(t *testing.T) {
	d := startProxy(t, "-setup-timeout", "2s", "-frame-timeout", "2s")
	good := echoLink(t, d.Address)
	rss := watchRSS(d.Cmd.Process.Pid)
	pr := startProbe(good)
	st := frame(&proxy.StreamType{Name: "echo", Credit: proxy.DefaultCredit})
	tx := frame(&proxy.TxPayload{Flags: event.SOM | event.EOM, Payload: make([]byte, 1000)})
	type result struct {
		name string
		took time.Duration
		err  error
	}
	results := make(chan result, 100)
	var wg sync.WaitGroup
	slow := func(name string, l *ssproxytest.Link, b []byte) {
		defer wg.Done()
		closed := make(chan error, 1)
		start := time.Now()
		go func() { closed <- l.WaitClosed(20 * time.Second) }()
		for i := 0; ; i++ {
			select {
			case err := <-closed:
				results <- result{name, time.Since(start), err}
				return
			case <-time.After(time.Second):
			}
			l.Conn.Write(b[i%len(b) : i%len(b)+1])
		}
	}
	for i := range 30 {
		l := ssproxytest.MustDial(t, d.Address)
		wg.Add(1)
		go slow(fmt.Sprintf("setup %d", i), l, st)
	}
	// The frame links start 1.5 s later, so their WARN lines do not fall in
	// the one-second window the 30 setup-timeout lines fill (the proxy logs
	// at most 20 WARNs a second, and the test waits for a frame line).
	time.Sleep(1500 * time.Millisecond)
	for i := range 30 {
		l := ssproxytest.MustDial(t, d.Address)
		l.MustCreate(t, "echo")
		wg.Add(1)
		go slow(fmt.Sprintf("frame %d", i), l, tx)
	}
	wg.Wait()
	close(results)
	for r := range results {
		if r.err != nil || r.took > 8*time.Second {
			t.Errorf("%s: closed after %v (%v), want within the 2 s timeout plus slack", r.name, r.took, r.err)
		}
	}
	d.WaitLog(t, time.Second, "frame not complete within 2s")
	pr.finish(t, 5)
	rss.finish(t)
	stopInTime(t, d)
}

// TestDefaultLimitsAdmit1000: with the default limits one process can run
// 1000 proxied streams (the project's performance target), and the proxy
// stays under its memory bound with them open.
func TestDefaultLimitsAdmit1000(t *testing.T) {
	d := startProxy(t)
	c := startChild(t, "conns", d.Address, "1000")
	if got, want := c.line(t), "created=1000 refused=0 failed=0"; got != want {
		t.Errorf("1000 links from one process with the default limits: %s, want %s", got, want)
	}
	if rss, err := d.RSS(); err != nil || rss >= rssBound {
		t.Errorf("RSS with 1000 links: %d MB (%v), want < %d MB", rss>>20, err, rssBound>>20)
	} else {
		t.Logf("RSS with 1000 links open: %.1f MB", float64(rss)/(1<<20))
	}
	stopInTime(t, d)
}
