// Package proxyhostile attacks the ssproxy binary the way a hostile local
// client would (SECURITY.md): garbage, truncated and oversize frames,
// control-frame floods on many links, thousands of connections, half-open
// links and slow senders. Each test asserts that the proxy stays up, that
// its resident memory stays under a stated bound, that another client's
// round trips keep working meanwhile and that SIGTERM still stops it
// within 2 s. The binary is built once per run (TestMain).
//
// The full-size flood of issue 8 (20 links × 3 M control frames) runs with
// SS_HOSTILE_FULL=1; by default a scaled flood runs.
package proxyhostile

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/securestreams/ss/internal/testutil"
)

// ssproxyBin is the binary under test, built by TestMain.
var ssproxyBin string

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(runChild(mode, os.Args[1:]))
	}
	flag.Parse()
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "ss-proxyhostile-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		if !testing.Short() {
			ssproxyBin = filepath.Join(dir, "ssproxy")
			out, err := exec.Command("go", "build", "-o", ssproxyBin, "github.com/securestreams/ss/cmd/ssproxy").CombinedOutput()
			if err != nil {
				fmt.Fprintf(os.Stderr, "go build ./cmd/ssproxy: %v\n%s", err, out)
				return 1
			}
		}
		code := m.Run()
		if code == 0 {
			// goleak's own TestMain exits: check inline so the build
			// directory is removed.
			if err := goleak.Find(testutil.GoleakOptions()...); err != nil {
				fmt.Fprintln(os.Stderr, "goleak:", err)
				return 1
			}
		}
		return code
	}())
}
