package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/securestreams/ss/policy"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const example = "../../policy/testdata/example.json"

func sspolicy(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

var diagLine = regexp.MustCompile(`^(.+):(\d+):(\d+): (error|warning): (.*) \[([a-z0-9-]+)\]$`)

// noEffectOnly fails unless every line of out is a no-effect diagnostic
// (keys the library stores without acting on; docs/lws-differences.md).
func noEffectOnly(t *testing.T, out string) {
	t.Helper()
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l != "" && !strings.HasSuffix(l, "[no-effect]") {
			t.Errorf("unexpected diagnostic: %s", l)
		}
	}
}

func TestCheckExampleStrict(t *testing.T) {
	code, out, errOut := sspolicy(t, "check", example)
	if code != 0 || errOut != "" || !strings.Contains(out, "warning: metrics[0]: metrics policies have no effect in this implementation") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	noEffectOnly(t, out)
	// Strict mode turns the no-effect warnings into errors, and nothing else.
	code, out, _ = sspolicy(t, "check", "--strict", example)
	if code != 1 || !strings.Contains(out, "error: s[1].bulk.attr_low_cost") {
		t.Fatalf("strict: exit %d\nstdout: %s", code, out)
	}
	noEffectOnly(t, out)
}

func TestCheckDiagnostics(t *testing.T) {
	bad := writeFile(t, "bad.json", "{\n  \"s\": [{\"x\": {\n    \"endpoint\": \"e\", \"port\": 70000, \"retry\": \"nope\"}}]\n}\n")
	warn := writeFile(t, "warn.json", `{"s": [{"x": {"endpoint": "e", "http_method": "GET", "endpiont": 1}}]}`)

	code, out, _ := sspolicy(t, "check", bad)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := []string{
		bad + ":2:10: error: s[0].x: HTTP client streamtype \"x\" has no \"http_method\"; GET is used [missing-key]",
		bad + ":3:30: error: s[0].x.port: integer 70000 is out of range 0..65535 [range]",
		bad + ":3:46: error: s[0].x.retry: no retry policy named \"nope\" [unknown-ref]",
	}
	// The http_method diagnostic is a warning in normal mode.
	want[0] = strings.Replace(want[0], "error", "warning", 1)
	if len(lines) != len(want) {
		t.Fatalf("output:\n%s", out)
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("line %d:\n got %s\nwant %s", i, lines[i], want[i])
		}
		if !diagLine.MatchString(lines[i]) {
			t.Errorf("line %d does not have the FILE:LINE:COL format", i)
		}
	}

	code, out, _ = sspolicy(t, "check", warn)
	if code != 0 || !strings.Contains(out, ":1:54: warning: s[0].x.endpiont: unknown key \"endpiont\" in a streamtype (ignored); did you mean \"endpoint\"? [unknown-key]") {
		t.Errorf("warnings only: exit %d\n%s", code, out)
	}
	for _, args := range [][]string{{"check", "--strict", warn}, {"check", warn, "-strict"}} {
		code, out, _ = sspolicy(t, args...)
		if code != 1 || !strings.Contains(out, ": error: s[0].x.endpiont") {
			t.Errorf("%v: exit %d\n%s", args, code, out)
		}
	}
	code, out, _ = sspolicy(t, "check", example, bad)
	if code != 1 || strings.Contains(out, "example.json") && !strings.Contains(out, "[no-effect]") {
		t.Errorf("several files: exit %d\n%s", code, out)
	}
	code, out, _ = sspolicy(t, "check", filepath.Join(t.TempDir(), "missing.json"))
	if code != 1 || !strings.Contains(out, "missing.json: error:") {
		t.Errorf("missing file: exit %d\n%s", code, out)
	}
	syn := writeFile(t, "syn.json", "{\n  \"a\": 1,\n}")
	code, out, _ = sspolicy(t, "check", syn)
	if code != 1 || !strings.HasPrefix(out, syn+":3:1: error: trailing comma") {
		t.Errorf("syntax: exit %d\n%s", code, out)
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"frob"}, {"check"}, {"check", "--bogus", example}, {"dump"}, {"fmt"},
		{"fmt", "a", "b"}, {"overlay", example}, {"gen"}, {"gen", "-var", "A", "-func", "B", example}} {
		if code, _, _ := sspolicy(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	if code, out, _ := sspolicy(t, "help"); code != 0 || !strings.Contains(out, "sspolicy check") {
		t.Errorf("help: %d %s", code, out)
	}
}

func TestDump(t *testing.T) {
	code, out, errOut := sspolicy(t, "dump", example)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"release:        2026.11-example",
		"  3 retry policies, 2 certs entries, 2 trust stores, 2 auth schemes, 1 metrics policy, 17 streamtypes\n",
		"retry forever\n  backoff: [500 1000 2000 4000 8000 16000 30000 60000 120000] ms (9 entries); conceal: 65535 (retry forever); jitter: none",
		"retry fast\n  backoff: [100 200] ms (2 entries); conceal: 2 (at most 3 attempts in a row); jitter: 30%",
		"example_test_cert: certificate, subject CN=example.test",
		"example_test_key: private key",
		"trust store example_test_alt: example_test_cert",
		"auth device_token: type token, blob 1, token refreshed by streamtype token_refresh",
		"streamtype api_get (h1 client)\n  endpoint:    example.test\n  port:        8443\n  protocol:    h1\n  tls:         true\n  trust store: example_test (1 certificate)\n  retry:       default: backoff: [1000 2000 3000 5000 10000] ms (5 entries); conceal: 5 (at most 6 attempts in a row); jitter: 20%; svalidping 30 s, svalidhup 35 s",
		"  metadata:    item, lang, ua (header user-agent), etag (header etag), ctype (header content-type)",
		"    http_resp_map: [{\"530\": 1530}, {\"531\": 1531}]",
		"    attr_priority: 3",
		"streamtype web (h1 server)",
		"  server cert: example_test_cert, key example_test_key",
		"    options: [{\"greeting\": \"hello\"}]",
		"streamtype chat (ws client)",
		"  via-socks5:  127.0.0.1:1080",
		"streamtype local_raw (raw client)\n  endpoint:    +@example.raw\n  port:        0\n  protocol:    raw\n  tls:         false\n  trust store: (no TLS)\n  retry:       none (the first failure is final)",
		"  rideshare:   upload_data",
		"  auth:        s3 (sigv4, blob 0)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dump lacks:\n%s", want)
		}
	}
	bad := writeFile(t, "bad.json", `{"s": 1}`)
	if code, _, errOut := sspolicy(t, "dump", bad); code != 1 || !strings.Contains(errOut, "[type]") {
		t.Errorf("dump of a bad policy: %d %s", code, errOut)
	}
}

func TestFmt(t *testing.T) {
	code, out, errOut := sspolicy(t, "fmt", example)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !json.Valid([]byte(out)) || strings.Contains(out, "# ") || strings.Contains(out, ",\n  ]") {
		t.Fatalf("not strict JSON:\n%s", out)
	}
	a, _, err := policy.ParseFile(example, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, diags, err := policy.Parse([]byte(out), policy.Options{})
	if err != nil || len(diags) != len(noEffect(diags)) {
		t.Fatalf("formatted policy: %v %v", err, diags)
	}
	if d := policy.Diff(a, b); d != "" {
		t.Errorf("formatted policy differs at %s", d)
	}
	// Unknown keys and their values are kept; fmt is idempotent.
	f := writeFile(t, "f.json", "# c\n{\"b\": [1,2,], \"a\": {\"x\": \"\\u00e9\\n\"}, \"zz\": null}")
	_, out, _ = sspolicy(t, "fmt", f)
	want := "{\n  \"b\": [1, 2],\n  \"a\": {\n    \"x\": \"é\\n\"\n  },\n  \"zz\": null\n}\n"
	if out != want {
		t.Errorf("fmt output:\n%s\nwant:\n%s", out, want)
	}
	g := writeFile(t, "g.json", out)
	if _, out2, _ := sspolicy(t, "fmt", g); out2 != out {
		t.Error("fmt is not idempotent")
	}
	syn := writeFile(t, "syn.json", "{\"a\": }")
	if code, _, errOut := sspolicy(t, "fmt", syn); code != 1 || !strings.Contains(errOut, syn+":1:7: error:") {
		t.Errorf("fmt of bad syntax: %d %s", code, errOut)
	}
}

func TestOverlayCommand(t *testing.T) {
	frag1 := writeFile(t, "f1.json", `{"s": [{"captive_portal_detect": {"endpoint": "127.0.0.1", "port": 1}}]}`)
	frag2 := writeFile(t, "f2.json", `{"s": [{"captive_portal_detect": {"http_url": "x"}, "new": {"endpoint": "n", "http_method": "GET"}}]}`)
	code, out, errOut := sspolicy(t, "overlay", example, frag1, frag2)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	p, diags, err := policy.Parse([]byte(out), policy.Options{})
	if err != nil || len(diags) != len(noEffect(diags)) {
		t.Fatalf("output does not parse: %v %v\n%s", err, diags, out)
	}
	cpd := p.Streamtype("captive_portal_detect")
	if cpd.Port != 1 || cpd.HTTPURL != "x" || cpd.HTTPExpect != 204 || p.Streamtype("new") == nil {
		t.Errorf("merged: %+v", cpd)
	}
	bad := writeFile(t, "bad.json", `{"retry": []}`)
	code, _, errOut = sspolicy(t, "overlay", example, bad)
	if code != 1 || !strings.Contains(errOut, bad+":1:2: error: retry: an overlay may only contain streamtypes") {
		t.Errorf("bad overlay: %d %s", code, errOut)
	}
}

func TestGenCommand(t *testing.T) {
	code, out, errOut := sspolicy(t, "gen", "-pkg", "pd", "-var", "Example", example)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	p, _, _ := policy.ParseFile(example, policy.Options{})
	want, err := policy.Generate(p, policy.GenOptions{Package: "pd", Var: "Example", Source: "example.json"})
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Error("gen output differs from policy.Generate")
	}
	dst := filepath.Join(t.TempDir(), "policy_gen.go")
	if code, _, errOut := sspolicy(t, "gen", "-func", "Load", "-o", dst, example); code != 0 {
		t.Fatalf("gen -o: %s", errOut)
	}
	if b, _ := os.ReadFile(dst); !strings.Contains(string(b), "func Load() *policy.Policy {") || !strings.Contains(string(b), "package policydata") {
		t.Error("gen -o output")
	}
	bad := writeFile(t, "bad.json", `{"s": [{"x": {"port": -1}}]}`)
	if code, out, errOut := sspolicy(t, "gen", bad); code != 1 || out != "" || !strings.Contains(errOut, "[range]") {
		t.Errorf("gen of a bad policy: %d %q %s", code, out, errOut)
	}
	warn := writeFile(t, "warn.json", `{"zz": 1}`)
	if code, _, _ := sspolicy(t, "gen", warn); code != 0 {
		t.Error("gen refused a policy with warnings")
	}
	if code, out, _ := sspolicy(t, "gen", "--strict", warn); code != 1 || out != "" {
		t.Error("gen --strict accepted a policy with warnings")
	}
}

// noEffect returns the no-effect warnings among diags.
func noEffect(diags []policy.Diagnostic) []policy.Diagnostic {
	var out []policy.Diagnostic
	for _, d := range diags {
		if d.Code == policy.CodeNoEffect && d.Severity == policy.SeverityWarning {
			out = append(out, d)
		}
	}
	return out
}
