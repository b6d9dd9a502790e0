package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/testutil"
	"github.com/securestreams/ss/policy"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.GoleakOptions()...)
}

func TestHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-h"}, &stdout, &stderr); code != 0 {
		t.Fatalf("-h: exit %d, stderr %q", code, stderr.String())
	}
	out := stdout.String()
	for _, f := range []string{"-proxy", "-direct", "-streamtype", "-peer", "-serve-peer", "-print-policy",
		"-proxy-buflen", "-compare", "-pid", "-tests", "-label", "-size", "-rtt-count", "-bytes", "-frame",
		"-window", "-streams", "-duration", "-dial-parallel", "-cycles", "-cycle-streams", "-settle", "-timeout", "-test-timeout", "-json"} {
		i := strings.Index(out, "\n  "+f+" ")
		if i < 0 {
			i = strings.Index(out, "\n  "+f+"\n")
		}
		if i < 0 {
			t.Errorf("-h does not list %s:\n%s", f, out)
			continue
		}
		if desc, _, _ := strings.Cut(out[i+3+len(f):], "\n  -"); len(strings.TrimSpace(desc)) < 15 {
			t.Errorf("%s: description %q too short", f, desc)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "exactly one of -proxy and -direct"},
		{[]string{"-proxy", "unix:@x", "-direct", "127.0.0.1:1"}, "exactly one"},
		{[]string{"-direct", "127.0.0.1:1", "-tests", "latency,bogus"}, `unknown test "bogus"`},
		{[]string{"-direct", "127.0.0.1:1", "-streams", "100,x"}, `"x" is not a positive count`},
		{[]string{"-direct", "127.0.0.1:1", "-frame", "70000"}, "-frame 1..65519"},
		{[]string{"-print-policy", "nohost"}, `-print-policy "nohost"`},
		{[]string{"-compare", "a.json"}, `"a.json" is not label=file`},
		{[]string{"-direct", "127.0.0.1:1", "extra"}, `unexpected argument "extra"`},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(tc.args, &stdout, &stderr); code != 2 {
			t.Errorf("%q: exit %d, want 2 (stderr %q)", tc.args, code, stderr.String())
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%q: stderr %q lacks %q", tc.args, stderr.String(), tc.want)
		}
	}
}

// A proxy whose onward stream cannot be created fails the run (exit 1) with
// the reason; the client does not hang.
func TestUnknownStreamtype(t *testing.T) {
	addr, _ := startProxy(t, "127.0.0.1:1")
	var stdout, stderr bytes.Buffer
	code := run([]string{"-proxy", addr, "-streamtype", "nosuch", "-tests", "latency", "-timeout", "20s"}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "CREATE_RESULT: failed") {
		t.Fatalf("exit %d, stderr %q; want 1 and CREATE_RESULT: failed", code, stderr.String())
	}
}

// startProxy serves an in-process proxy (the runtime's ServeProxy, the same
// code as ssproxy) for the policy -print-policy writes for peerAddr, on an
// abstract unix socket.
func startProxy(t *testing.T, peerAddr string) (string, *ss.Runtime) {
	t.Helper()
	var js bytes.Buffer
	if code := run([]string{"-print-policy", peerAddr}, &js, os.Stderr); code != 0 {
		t.Fatalf("-print-policy: exit %d", code)
	}
	pol, _, err := policy.Parse(js.Bytes(), policy.Options{})
	if err != nil {
		t.Fatalf("the printed policy does not parse: %v\n%s", err, js.String())
	}
	rt, err := ss.New(context.Background(), ss.Config{Policy: pol})
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("@ssproxy-bench-test-%d-%s", os.Getpid(), t.Name())
	ln, err := net.Listen("unix", name)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { rt.ServeProxy(ctx, ln); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		cctx, ccancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer ccancel()
		rt.Close(cctx)
	})
	return "unix:" + name, rt
}

func runJSON(t *testing.T, args ...string) *Result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(append(args, "-json"), &stdout, &stderr); code != 0 {
		t.Fatalf("%q: exit %d\nstderr: %s\nstdout: %s", args, code, stderr.String(), stdout.String())
	}
	r := &Result{}
	if err := json.Unmarshal(stdout.Bytes(), r); err != nil {
		t.Fatalf("-json output: %v\n%s", err, stdout.String())
	}
	return r
}

// TestAgainstInProcessProxy runs every test briefly through a real proxy
// to the tool's own peer and directly, checks each figure is there and
// plausible, and that -compare prints them side by side with the ratio.
func TestAgainstInProcessProxy(t *testing.T) {
	p, err := startPeer("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	addr, _ := startProxy(t, p.Addr())
	small := []string{"-rtt-count", "200", "-bytes", "1048576", "-streams", "5,20", "-duration", "200ms",
		"-cycles", "2", "-cycle-streams", "10", "-settle", "20ms"}
	// The test process is the proxy here: its RSS is what -pid reports.
	prox := runJSON(t, append([]string{"-proxy", addr, "-pid", fmt.Sprint(os.Getpid()), "-label", "ssproxy"}, small...)...)
	direct := runJSON(t, append([]string{"-direct", p.Addr()}, small...)...)
	for _, r := range []*Result{prox, direct} {
		if r.Latency == nil || r.Latency.Count != 200 || r.Latency.P50us <= 0 || r.Latency.P99us < r.Latency.P50us {
			t.Errorf("%s: latency %+v", r.Label, r.Latency)
		}
		for what, tp := range map[string]*Throughput{"rx": r.Rx, "tx": r.Tx} {
			if tp == nil || tp.Bytes != 1<<20 || tp.MiBps <= 0 {
				t.Errorf("%s: %s %+v", r.Label, what, tp)
			}
		}
		if len(r.Streams) != 2 || r.Streams[0].N != 5 || r.Streams[1].N != 20 {
			t.Fatalf("%s: streams %+v", r.Label, r.Streams)
		}
		for _, s := range r.Streams {
			if s.RoundTrips < int64(s.N) || s.SetupSeconds <= 0 {
				t.Errorf("%s: %d streams: %+v", r.Label, s.N, s)
			}
		}
	}
	if direct.Cycles != nil || direct.RSSStart != 0 {
		t.Errorf("direct without -pid reported memory: %+v %d", direct.Cycles, direct.RSSStart)
	}
	if prox.RSSStart <= 0 || prox.Streams[1].RSSPeak <= 0 {
		t.Errorf("proxy RSS not reported: start %d, streams %+v", prox.RSSStart, prox.Streams[1])
	}
	if c := prox.Cycles; c == nil || c.K != 2 || len(c.After) != 2 || c.After[0] <= 0 {
		t.Errorf("cycles %+v", prox.Cycles)
	}
	if prox.Label != "ssproxy" || direct.Label != "direct" || prox.Proxy != addr {
		t.Errorf("labels %q %q, proxy %q", prox.Label, direct.Label, prox.Proxy)
	}

	dir := t.TempDir()
	files := map[string]*Result{"d.json": direct, "s.json": prox}
	for name, r := range files {
		b, _ := json.Marshal(r)
		os.WriteFile(filepath.Join(dir, name), b, 0o600)
	}
	var out, errOut bytes.Buffer
	spec := "direct=" + filepath.Join(dir, "d.json") + ",ssproxy=" + filepath.Join(dir, "s.json")
	if code := run([]string{"-compare", spec}, &out, &errOut); code != 0 {
		t.Fatalf("-compare: exit %d: %s", code, errOut.String())
	}
	want := fmt.Sprintf("%.2f×", prox.Latency.P50us/direct.Latency.P50us)
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "64 B round trip p50") {
			if !strings.Contains(line, want) {
				t.Errorf("-compare p50 row %q lacks the ratio %s", line, want)
			}
			return
		}
	}
	t.Errorf("-compare output has no p50 row:\n%s", out.String())
}

// TestTxPacing: paced transfers complete and are fully acknowledged,
// unpaced, with a window smaller than a frame (no deadlock) and larger.
func TestTxPacing(t *testing.T) {
	p, err := startPeer("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	tg := target{direct: p.Addr(), timeout: 10 * time.Second}
	for _, w := range []int{0, 1000, 64 << 10} {
		r, err := measureTx(tg, 300<<10, 16<<10, w)
		if err != nil || r.Bytes != 300<<10 {
			t.Errorf("window %d: %+v %v", w, r, err)
		}
	}
}

// A peer that stops answering fails the test after -test-timeout instead of
// hanging the run.
func TestTestTimeout(t *testing.T) {
	mute := testutil.Listen(t, "tcp", "", nil, func(c net.Conn) { io.Copy(io.Discard, c) })
	var stdout, stderr bytes.Buffer
	t0 := time.Now()
	code := run([]string{"-direct", mute.Addr().String(), "-tests", "latency", "-test-timeout", "300ms"}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "i/o timeout") {
		t.Fatalf("exit %d, stderr %q; want 1 and an i/o timeout", code, stderr.String())
	}
	if el := time.Since(t0); el > 20*time.Second {
		t.Errorf("took %v", el)
	}
}

// TestCompareRounds: with several runs per label (label=a+b+c), -compare
// prints each label's median and, in the last column, the median of the
// per-round ratios (not the ratio of the medians).
func TestCompareRounds(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, p50 float64) string {
		b, _ := json.Marshal(&Result{Latency: &Latency{Size: 64, Count: 1, P50us: p50, P99us: p50}})
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	lws := []string{write("l1", 100), write("l2", 200), write("l3", 400)}
	ss := []string{write("s1", 50), write("s2", 300), write("s3", 560)}
	spec := "lws=" + strings.Join(lws, "+") + ",ss=" + strings.Join(ss, "+")
	var out, errOut bytes.Buffer
	if code := run([]string{"-compare", spec}, &out, &errOut); code != 0 {
		t.Fatalf("-compare: exit %d: %s", code, errOut.String())
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if !strings.HasPrefix(line, "64 B round trip p50") {
			continue
		}
		cells := strings.Split(line, "|")
		if len(cells) < 4 {
			t.Fatalf("p50 row %q", line)
		}
		// Medians 200 and 300; per-round ratios 0.5, 1.5, 1.4: median 1.40
		// (the ratio of the medians would be 1.50).
		if got := []string{strings.TrimSpace(cells[1]), strings.TrimSpace(cells[2]), strings.TrimSpace(cells[3])}; got[0] != "200.0" || got[1] != "300.0" || got[2] != "1.40×" {
			t.Errorf("p50 row %q: cells %q, want 200.0, 300.0, 1.40×", line, got)
		}
		return
	}
	t.Errorf("no p50 row:\n%s", out.String())
}
