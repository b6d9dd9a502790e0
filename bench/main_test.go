package bench

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/securestreams/ss/internal/testutil"
)

// TestMain checks for leaked goroutines after the package's tests. Runs
// with -bench are not checked: the benchmarks start external processes and
// measure, they are not tests.
func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if code == 0 && flag.Lookup("test.bench").Value.String() == "" {
		if err := goleak.Find(testutil.GoleakOptions()...); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
