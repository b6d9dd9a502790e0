package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/securestreams/ss/internal/testutil"
)

// asDaemon, set in the environment, makes the test binary run as ssproxy
// (startDaemon re-executes it): the tests run the real main in a process of
// its own without a second build.
const asDaemon = "SSPROXY_TEST_RUN_AS_DAEMON"

func TestMain(m *testing.M) {
	if os.Getenv(asDaemon) == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	goleak.VerifyTestMain(m, testutil.GoleakOptions()...)
}

func TestHelp(t *testing.T) {
	flags := []string{"-policy", "-listen", "-log-level", "-log-format", "-v", "-shutdown-timeout",
		"-setup-timeout", "-max-links", "-max-links-per-uid", "-max-links-per-process", "-max-metadata",
		"-max-metadata-bytes", "-control-rate", "-control-burst", "-max-queued-bytes", "-frame-timeout",
		"-allow-uid", "-allow-gid"}
	for _, arg := range []string{"-h", "-help", "--help"} {
		var stdout, stderr bytes.Buffer
		if code := run([]string{arg}, &stdout, &stderr); code != 0 {
			t.Fatalf("%s: exit %d, stderr %q", arg, code, stderr.String())
		}
		if stderr.Len() != 0 {
			t.Errorf("%s: stderr %q, want nothing", arg, stderr.String())
		}
		out := stdout.String()
		for _, f := range flags {
			if d := flagDescription(out, f); len(d) < 10 {
				t.Errorf("%s: %s has no description (%q) in:\n%s", arg, f, d, out)
			}
		}
		for _, want := range []string{"usage: ssproxy", "ANY LOCAL USER", "SIGHUP"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: help lacks %q", arg, want)
			}
		}
	}
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	os.WriteFile(good, []byte(`{"schema-version": 1, "s": [{"x": {"protocol": "raw", "endpoint": "127.0.0.1", "port": 1}}]}`), 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "-policy is required"},
		{[]string{"-bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"-policy", good, "extra"}, `unexpected argument "extra"`},
		{[]string{"-policy", good, "-log-level", "loud"}, `-log-level "loud": want debug, info, warn or error`},
		{[]string{"-policy", good, "-log-format", "xml"}, `-log-format "xml": want text or json`},
		{[]string{"-policy", good, "-listen", "tcp:nohostport"}, "-listen: ss: proxy: bad address"},
		{[]string{"-policy", good, "-shutdown-timeout", "0s"}, "-shutdown-timeout 0s: must be positive"},
		{[]string{"-policy", good, "-shutdown-timeout", "soon"}, `invalid value "soon" for flag -shutdown-timeout`},
		{[]string{"-policy", good, "-max-links", "0"}, "a limit of 0 would refuse everything"},
		{[]string{"-policy", good, "-control-burst", "0"}, "-control-burst 0: must be at least 1"},
		{[]string{"-policy", good, "-setup-timeout", "-1s"}, "-setup-timeout -1s: must be positive"},
		{[]string{"-policy", good, "-busy-poll", "-1ms"}, "-busy-poll -1ms: must not be negative"},
		{[]string{"-policy", good, "-allow-uid", "no-such-user-here"}, `"no-such-user-here" is neither a number nor a known name`},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), tc.want) || !strings.Contains(stderr.String(), "usage: ssproxy") {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q with the usage line", tc.args, code, stderr.String(), tc.want)
		}
		if stdout.Len() != 0 {
			t.Errorf("%q: stdout %q", tc.args, stdout.String())
		}
	}
}

func TestStartupErrors(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-policy", filepath.Join(dir, "missing.json")}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "missing.json") {
		t.Fatalf("missing policy: exit %d, %s", code, stderr.String())
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"schema-version": 1, "s": [`), 0o600)
	stderr.Reset()
	if code := run([]string{"-policy", bad}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "bad.json") {
		t.Fatalf("bad policy: exit %d, %s", code, stderr.String())
	}
	good := filepath.Join(dir, "good.json")
	os.WriteFile(good, []byte(`{"schema-version": 1, "s": [{"x": {"protocol": "raw", "endpoint": "127.0.0.1", "port": 1}}]}`), 0o600)
	stderr.Reset()
	if code := run([]string{"-policy", good, "-listen", "tcp:127.0.0.1:0", "-allow-uid", "0"}, &stdout, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "-allow-uid/-allow-gid need a unix socket") {
		t.Fatalf("allow-list on TCP: exit %d, %s", code, stderr.String())
	}
}

// flagDescription returns the help text PrintDefaults wrote for flag f
// ("  -f\tdesc" for booleans, "  -f name\n    \tdesc" otherwise).
func flagDescription(help, f string) string {
	lines := strings.Split(help, "\n")
	for i, l := range lines {
		if l == "  "+f || strings.HasPrefix(l, "  "+f+" ") {
			if i+1 < len(lines) {
				return strings.TrimSpace(lines[i+1])
			}
		}
		if strings.HasPrefix(l, "  "+f+"\t") {
			return strings.TrimSpace(l[len(f)+3:])
		}
	}
	return ""
}
