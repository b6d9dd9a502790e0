package policy

import (
	"os"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// corpus collects every policy text used by the tests; FuzzParse seeds from
// it and the generator round trip compiles every valid one.
var (
	corpusMu sync.Mutex
	corpus   []string
)

// pol registers a policy text in the corpus and returns it.
func pol(s string) string {
	corpusMu.Lock()
	corpus = append(corpus, s)
	corpusMu.Unlock()
	return s
}

func readTestdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// mustParse parses s and fails the test on any error.
func mustParse(t testing.TB, s string, opts Options) (*Policy, []Diagnostic) {
	t.Helper()
	p, diags, err := Parse([]byte(s), opts)
	if err != nil {
		t.Fatalf("unexpected error: %v\npolicy:\n%s", err, s)
	}
	if p == nil {
		t.Fatal("nil policy without error")
	}
	return p, diags
}

func diagsText(diags []Diagnostic) string {
	var b strings.Builder
	for _, d := range diags {
		b.WriteString("\n\t" + d.String())
	}
	return b.String()
}

func withCode(diags []Diagnostic, code Code) []Diagnostic {
	var out []Diagnostic
	for _, d := range diags {
		if d.Code == code {
			out = append(out, d)
		}
	}
	return out
}

// marked removes the single '§' marker from s and returns the text and the
// 1-based line and byte column of the byte that followed the marker.
func marked(t testing.TB, s string) (string, int, int) {
	t.Helper()
	i := strings.Index(s, "§")
	if i < 0 {
		t.Fatalf("no § marker in %q", s)
	}
	text := s[:i] + s[i+len("§"):]
	line := 1 + strings.Count(s[:i], "\n")
	col := i + 1
	if nl := strings.LastIndexByte(s[:i], '\n'); nl >= 0 {
		col = i - nl
	}
	return text, line, col
}

// mustParseNoEffect parses s without Strict and fails unless every
// diagnostic is a no-effect warning (keys this implementation stores
// without acting on); it returns the policy and those warnings' paths.
func mustParseNoEffect(t testing.TB, s string) (*Policy, []string) {
	t.Helper()
	p, diags := mustParse(t, s, Options{})
	var paths []string
	for _, d := range diags {
		if d.Code != CodeNoEffect || d.Severity != SeverityWarning {
			t.Fatalf("unexpected diagnostic %s", d.String())
		}
		paths = append(paths, d.Path)
	}
	return p, paths
}
