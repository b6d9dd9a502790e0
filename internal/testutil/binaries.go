package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

var (
	binMu    sync.Mutex
	binDir   string
	binBuilt = map[string]*binBuild{}
)

type binBuild struct {
	once sync.Once
	path string
	err  error
}

// RunMain is a TestMain body for packages that build binaries with
// BuildBinary: it runs the tests, checks for leaked goroutines with
// GoleakOptions when they passed, removes the built binaries and returns
// the exit code:
//
//	func TestMain(m *testing.M) { os.Exit(testutil.RunMain(m)) }
func RunMain(m *testing.M) int {
	code := m.Run()
	binMu.Lock()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	binMu.Unlock()
	if code == 0 {
		if err := goleak.Find(GoleakOptions()...); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			return 1
		}
	}
	return code
}

// BuildBinary builds the main package pkg (an import path, for example
// "github.com/securestreams/ss/cmd/ssproxy") once per test binary and
// returns the path of the executable; RunMain removes it at the end.
func BuildBinary(tb testing.TB, pkg string) string {
	tb.Helper()
	binMu.Lock()
	if binDir == "" {
		d, err := os.MkdirTemp("", "ss-testbin-")
		if err != nil {
			binMu.Unlock()
			tb.Fatal(err)
		}
		binDir = d
	}
	b := binBuilt[pkg]
	if b == nil {
		b = &binBuild{}
		binBuilt[pkg] = b
	}
	dir := binDir
	binMu.Unlock()
	b.once.Do(func() {
		out := filepath.Join(dir, filepath.Base(pkg))
		if msg, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, msg)
			return
		}
		b.path = out
	})
	if b.err != nil {
		tb.Fatal(b.err)
	}
	return b.path
}
