package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/proxy"
	"github.com/securestreams/ss/internal/testutil"
	"github.com/securestreams/ss/internal/testutil/ssproxytest"
)

// TestReleaserDecides: a release when the links fall to half the peak or
// below and by 32 at least, not before, and the peak starts again from
// there.
func TestReleaserDecides(t *testing.T) {
	n := 0
	r := releaser{links: func() int { return n }, peakSince: func() int { return 0 }}
	for _, step := range []struct {
		links   int
		release bool
	}{{0, false}, {100, false}, {60, false}, {50, true}, {50, false}, {26, false}, {25, false}, {0, true}, {40, false}, {20, false}, {80, false}, {40, true}, {0, true}, {0, false}} {
		n = step.links
		if _, _, got := r.check(); got != step.release {
			t.Fatalf("at %d links (peak %d): release %v, want %v", step.links, r.peak, got, step.release)
		}
	}
	// A burst between two checks counts.
	n = 0
	r = releaser{links: func() int { return n }, peakSince: func() int { return 500 }}
	if peak, _, got := r.check(); !got || peak != 500 {
		t.Fatalf("after a burst of 500 links between checks: release %v, peak %d; want a release from 500", got, peak)
	}
}

// TestDaemonReleasesMemory: with -release-idle, once 200 links have closed
// the daemon returns memory to the OS and logs it with the peak it saw.
func TestDaemonReleasesMemory(t *testing.T) {
	echo := testutil.Listen(t, "tcp", "", nil, testutil.Echo)
	file := filepath.Join(t.TempDir(), "p.json")
	writeFile(t, file, rawPolicy(echo.Port(), "x"))
	d := startDaemon(t, file, "-release-idle", "100ms", "-memory-limit", "1073741824", "-log-level", "debug")
	links := make([]*ssproxytest.Link, 200)
	for i := range links {
		links[i] = ssproxytest.MustDial(t, d.Address)
		links[i].MustCreate(t, "x")
		if err := links[i].Send(&proxy.OnwardConnect{}); err != nil {
			t.Fatal(err)
		}
		if err := links[i].WaitState(event.Connected, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range links[:20] {
		if err := l.RoundTrip(make([]byte, 3000), 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond) // a tick sees the peak
	if strings.Contains(d.Log(), "memory returned") {
		t.Fatal("memory released while the links were all open")
	}
	for _, l := range links {
		l.Close()
	}
	// A tick may see the links half closed: the release is then logged
	// with the links still open.
	line := d.WaitLog(t, 20*time.Second, "memory returned to the OS", "links_peak=200")
	t.Log(line)
	if code, _ := d.Stop(t, syscall.SIGTERM, 10*time.Second); code != 0 {
		t.Errorf("SIGTERM: exit %d", code)
	}
}

// TestGOGCFlag: the collector's target is -gogc when given, else GOGC
// from the environment, else DefaultGOGC; the daemon logs the one it runs
// with.
func TestGOGCFlag(t *testing.T) {
	echo := testutil.Listen(t, "tcp", "", nil, testutil.Echo)
	file := filepath.Join(t.TempDir(), "p.json")
	writeFile(t, file, rawPolicy(echo.Port(), "x"))
	for _, c := range []struct {
		env  string
		args []string
		want string
	}{
		{"GOGC=", nil, "gogc=" + strconv.Itoa(DefaultGOGC)},
		{"GOGC=70", nil, "gogc=70"},
		{"GOGC=70", []string{"-gogc", "30"}, "gogc=30"},
	} {
		addr := ssproxytest.AbstractAddress()
		args := append([]string{"-policy", file, "-listen", addr, "-log-level", "debug"}, c.args...)
		d := ssproxytest.Start(t, os.Args[0], addr, []string{asDaemon + "=1", c.env}, args...)
		d.WaitLog(t, 10*time.Second, "garbage collector target", c.want)
		if code, _ := d.Stop(t, syscall.SIGTERM, 10*time.Second); code != 0 {
			t.Errorf("%s %v: SIGTERM: exit %d", c.env, c.args, code)
		}
	}
}

// TestMemoryFlagsChecked: negative values are usage errors.
func TestMemoryFlagsChecked(t *testing.T) {
	for _, args := range [][]string{{"-release-idle", "-1s"}, {"-memory-limit", "-5"}, {"-gogc", "0"}} {
		var out, errb strings.Builder
		if code := run(append([]string{"-policy", "x.json"}, args...), &out, &errb); code != 2 || !strings.Contains(errb.String(), args[0]) {
			t.Errorf("%v: exit %d, stderr %q: want 2 naming the flag", args, code, errb.String())
		}
	}
}
