package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/proxy"
	"github.com/securestreams/ss/internal/testutil"
	"github.com/securestreams/ss/internal/testutil/ssproxytest"
)

// startDaemon runs this test binary as ssproxy (see TestMain) listening on
// a fresh abstract socket, with the given extra flags, and waits for its
// "listening" line.
func startDaemon(t *testing.T, policyFile string, flags ...string) *ssproxytest.Daemon {
	t.Helper()
	addr := ssproxytest.AbstractAddress()
	args := append([]string{"-policy", policyFile, "-listen", addr}, flags...)
	d := ssproxytest.Start(t, os.Args[0], addr, []string{asDaemon + "=1"}, args...)
	d.WaitLog(t, 10*time.Second, "ssproxy: listening")
	return d
}

// rawPolicy is a policy with raw streamtypes to the loopback port, one per
// name.
func rawPolicy(port int, names ...string) string {
	var sts []string
	for _, n := range names {
		sts = append(sts, fmt.Sprintf(`{%q: {"protocol": "raw", "endpoint": "127.0.0.1", "port": %d}}`, n, port))
	}
	return `{"schema-version": 1, "s": [` + strings.Join(sts, ", ") + `]}`
}

func writeFile(t *testing.T, name, s string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestDaemonLogs: at the default level ssproxy logs where it listens, the
// policy summary and its warnings, but not an ordinary client close; it
// stops on SIGTERM with status 0 well within 2 s.
func TestDaemonLogs(t *testing.T) {
	file := filepath.Join(t.TempDir(), "p.json")
	// "port" as a string: accepted with a warning.
	writeFile(t, file, `{"schema-version": 1, "s": [{"x": {"protocol": "raw", "endpoint": "127.0.0.1", "port": "1"}}]}`)
	d := startDaemon(t, file)
	l := d.WaitLog(t, time.Second, "level=INFO", "ssproxy: listening")
	if !strings.Contains(l, d.Address) || !strings.Contains(l, "any local user") {
		t.Errorf("listening line %q lacks the address or the abstract-socket note", l)
	}
	d.WaitLog(t, time.Second, "level=INFO", "policy loaded", "streamtypes=1", "client=x")
	d.WaitLog(t, time.Second, "level=WARN", "integer given as a string")

	link := ssproxytest.MustDial(t, d.Address)
	link.MustCreate(t, "x")
	link.Close()
	// An unknown streamtype is refused at INFO: proof the close above has
	// been handled before we look at the log.
	bad := ssproxytest.MustDial(t, d.Address)
	if cr, err := bad.Create("nosuch", 5*time.Second); err != nil || cr.OK() {
		t.Fatalf("unknown streamtype: %v, %v", cr, err)
	}
	d.WaitLog(t, 5*time.Second, "level=INFO", "create failed", "nosuch")
	// Status 0 means it stopped within the shutdown timeout; the bound only
	// catches a stop that waits for something, with room for a loaded machine.
	code, took := d.Stop(t, syscall.SIGTERM, 10*time.Second)
	if code != 0 || took > 5*time.Second {
		t.Errorf("SIGTERM: exit %d after %v, want 0 within 5 s", code, took)
	}
	log := d.Log()
	if strings.Contains(log, "client closed the link") {
		t.Errorf("an ordinary close was logged at the default level:\n%s", log)
	}
	if strings.Contains(log, "actor system started") {
		t.Errorf("the actor system's INFO lines reach the log:\n%s", log)
	}
	if !strings.Contains(log, "ssproxy: stopped") {
		t.Errorf("no stop line:\n%s", log)
	}
}

// TestDaemonDebugAndJSON: -log-level debug shows ordinary closes at DEBUG;
// -log-format json writes JSON lines; -v is -log-level debug.
func TestDaemonDebugAndJSON(t *testing.T) {
	file := filepath.Join(t.TempDir(), "p.json")
	writeFile(t, file, rawPolicy(1, "x"))
	for _, flags := range [][]string{{"-log-level", "debug", "-log-format", "json"}, {"-v", "-log-format", "json"}} {
		d := startDaemon(t, file, flags...)
		link := ssproxytest.MustDial(t, d.Address)
		link.MustCreate(t, "x")
		link.Close()
		created := d.WaitLog(t, 5*time.Second, "link created")
		if want := fmt.Sprintf("pid=%d", os.Getpid()); !strings.Contains(created, want) || !strings.Contains(created, fmt.Sprintf("uid=%d", os.Getuid())) {
			t.Errorf("%v: link line %q lacks the peer credentials (%s)", flags, created, want)
		}
		l := d.WaitLog(t, 5*time.Second, "client closed the link")
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("%v: log line %q is not JSON: %v", flags, l, err)
		}
		if rec["level"] != "DEBUG" {
			t.Errorf("%v: ordinary close logged at %v, want DEBUG", flags, rec["level"])
		}
		if code, _ := d.Stop(t, syscall.SIGINT, 5*time.Second); code != 0 {
			t.Errorf("%v: SIGINT: exit %d", flags, code)
		}
	}
}

// TestDaemonSIGHUP: SIGHUP installs the new policy for new streams while an
// existing link keeps working; a bad file keeps the old policy and the log
// says why.
func TestDaemonSIGHUP(t *testing.T) {
	echo := testutil.Listen(t, "tcp", "", nil, testutil.Echo)
	file := filepath.Join(t.TempDir(), "p.json")
	writeFile(t, file, rawPolicy(echo.Port(), "a"))
	d := startDaemon(t, file)

	old := ssproxytest.MustDial(t, d.Address)
	old.MustCreate(t, "a")
	if err := old.Send(&proxy.OnwardConnect{}); err != nil {
		t.Fatal(err)
	}
	if err := old.WaitState(event.Connected, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	refused := ssproxytest.MustDial(t, d.Address)
	if cr, err := refused.Create("b", 5*time.Second); err != nil || cr.OK() {
		t.Fatalf("b before reload: %+v, %v; want a failed CREATE_RESULT", cr, err)
	}

	writeFile(t, file, rawPolicy(echo.Port(), "a", "b"))
	d.Signal(t, syscall.SIGHUP)
	d.WaitLog(t, 5*time.Second, "policy loaded", "streamtypes=2")
	nb := ssproxytest.MustDial(t, d.Address)
	nb.MustCreate(t, "b")
	if err := old.RoundTrip([]byte("still here"), 10*time.Second); err != nil {
		t.Fatalf("the link opened before the reload: %v", err)
	}

	writeFile(t, file, `{"schema-version": 1, "s": [`)
	d.Signal(t, syscall.SIGHUP)
	d.WaitLog(t, 5*time.Second, "level=ERROR", "policy reload failed, keeping the current policy", "p.json")
	again := ssproxytest.MustDial(t, d.Address)
	again.MustCreate(t, "b")
	if err := old.RoundTrip([]byte("and here"), 10*time.Second); err != nil {
		t.Fatalf("after a failed reload: %v", err)
	}
	if code, _ := d.Stop(t, syscall.SIGTERM, 5*time.Second); code != 0 {
		t.Errorf("SIGTERM: exit %d", code)
	}
}

// TestDaemonAllowList: with -allow-uid naming another user, our links are
// refused (CREATE_RESULT failed) and logged at WARN with our credentials;
// with our own uid they are accepted.
func TestDaemonAllowList(t *testing.T) {
	file := filepath.Join(t.TempDir(), "p.json")
	writeFile(t, file, rawPolicy(1, "x"))
	other := fmt.Sprint(os.Getuid() + 1)
	d := startDaemon(t, file, "-allow-uid", other)
	d.WaitLog(t, time.Second, "ssproxy: limits", "allow=\"uids ["+other+"]")
	link := ssproxytest.MustDial(t, d.Address)
	if cr, err := link.Create("x", 5*time.Second); err != nil || cr.OK() {
		t.Fatalf("peer outside the allow-list: %+v, %v", cr, err)
	}
	d.WaitLog(t, 5*time.Second, "level=WARN", "link refused", "not in the allow-list", fmt.Sprintf("uid=%d", os.Getuid()))
	d.Stop(t, syscall.SIGTERM, 5*time.Second)

	d = startDaemon(t, file, "-allow-uid", fmt.Sprint(os.Getuid()))
	ssproxytest.MustDial(t, d.Address).MustCreate(t, "x")
	d.Stop(t, syscall.SIGTERM, 5*time.Second)
}

// The test binary runs as the daemon (TestMain), so a feature registered
// here exists only in tests: -test-stuck-stop makes stopping hang, as a
// stuck onward peer or actor could, to prove the shutdown deadline.
func init() { register(stuckStop) }

func stuckStop(fs *flag.FlagSet) hooks {
	stuck := fs.Bool("test-stuck-stop", false, "(tests only) make stopping hang")
	return hooks{Start: func(ctx context.Context, d *daemon) (func(context.Context), error) {
		if !*stuck {
			return nil, nil
		}
		return func(context.Context) { select {} }, nil
	}}
}

// TestDaemonShutdownDeadline: when stopping hangs, SIGTERM still ends the
// process within -shutdown-timeout (status 1, logged); a second signal
// ends it at once.
func TestDaemonShutdownDeadline(t *testing.T) {
	file := filepath.Join(t.TempDir(), "p.json")
	writeFile(t, file, rawPolicy(1, "x"))
	d := startDaemon(t, file, "-test-stuck-stop")
	// Without the deadline it would never exit; the slack above 1.5 s is
	// for a loaded machine.
	code, took := d.Stop(t, syscall.SIGTERM, 10*time.Second)
	if code != 1 || took > 5*time.Second || took < time.Second {
		t.Errorf("stuck stop: exit %d after %v, want 1 after the 1.5 s deadline", code, took)
	}
	d.WaitLog(t, time.Second, "level=ERROR", "not stopped within the shutdown timeout")

	d = startDaemon(t, file, "-test-stuck-stop", "-shutdown-timeout", "1m")
	d.Signal(t, syscall.SIGTERM)
	d.WaitLog(t, 5*time.Second, "ssproxy: stopping")
	// -shutdown-timeout is 1m: anything well under it is "at once".
	code, took = d.Stop(t, syscall.SIGINT, 10*time.Second)
	if code != 1 || took > 5*time.Second {
		t.Errorf("second signal: exit %d after %v, want 1 at once", code, took)
	}
	d.WaitLog(t, time.Second, "second signal, exiting now")
}
