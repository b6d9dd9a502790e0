// Package hostile holds the hostile-input suite (docs/security-validation.md):
// for every protocol, tables of injection attempts (CR, LF, NUL, space, '#',
// '?', non-UTF-8, oversize) in URL templates, header metadata and topics,
// asserting exactly what reaches a real loopback server that records what
// it received, and that nothing smuggled arrives in any case.
package hostile

import (
	"os"
	"testing"

	"github.com/securestreams/ss/internal/testutil"
)

func TestMain(m *testing.M) { os.Exit(testutil.RunMain(m)) }
