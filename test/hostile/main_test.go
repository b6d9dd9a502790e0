// Package hostile holds the hostile-input suite (docs/security-validation.md):
// for every protocol, tables of injection attempts (CR, LF, NUL, space, '#',
// '?', non-UTF-8, oversize) in URL templates, header metadata and topics,
// asserting exactly what reaches a real loopback server that records what
// it received, and that nothing smuggled arrives in any case.
package hostile

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/securestreams/ss/internal/testutil"
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ss-hostile-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := func() int {
		defer os.RemoveAll(dir)
		code := m.Run()
		if code == 0 {
			if err := goleak.Find(testutil.GoleakOptions()...); err != nil {
				fmt.Fprintln(os.Stderr, "goleak:", err)
				return 1
			}
		}
		return code
	}()
	os.Exit(code)
}
