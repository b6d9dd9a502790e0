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

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.GoleakOptions()...)
}

func TestRunUsage(t *testing.T) {
	var stderr bytes.Buffer
	if code := run(nil, &stderr); code != 2 || !strings.Contains(stderr.String(), "usage") {
		t.Fatalf("no -policy: exit %d, stderr %q", code, stderr.String())
	}
	stderr.Reset()
	if code := run([]string{"-bogus"}, &stderr); code != 2 {
		t.Fatalf("bad flag: exit %d", code)
	}
}

func TestRunStartupErrors(t *testing.T) {
	dir := t.TempDir()
	var stderr bytes.Buffer
	if code := run([]string{"-policy", filepath.Join(dir, "missing.json")}, &stderr); code != 1 {
		t.Fatalf("missing policy: exit %d", code)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"schema-version": 1, "s": [`), 0o600)
	stderr.Reset()
	if code := run([]string{"-policy", bad}, &stderr); code != 1 {
		t.Fatalf("bad policy: exit %d, %s", code, stderr.String())
	}
	good := filepath.Join(dir, "good.json")
	os.WriteFile(good, []byte(`{"schema-version": 1, "s": [{"x": {"protocol": "raw", "endpoint": "127.0.0.1", "port": 1}}]}`), 0o600)
	stderr.Reset()
	if code := run([]string{"-policy", good, "-listen", "tcp:nohostport"}, &stderr); code != 1 || !strings.Contains(stderr.String(), "listen") {
		t.Fatalf("bad address: exit %d, %s", code, stderr.String())
	}
}
