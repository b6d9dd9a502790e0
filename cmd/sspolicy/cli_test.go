package main

import (
	"strings"
	"testing"
)

// TestHelp: -h, -help, --help and help exit 0 and describe every command;
// COMMAND -h exits 0 with the command's usage, description and flags.
func TestHelp(t *testing.T) {
	for _, h := range []string{"-h", "-help", "--help", "help"} {
		code, out, errOut := sspolicy(t, h)
		if code != 0 || errOut != "" {
			t.Errorf("%s: exit %d, stderr %q", h, code, errOut)
		}
		for _, c := range commands {
			if !strings.Contains(out, "  "+c.name+" ") || !strings.Contains(out, c.summary) {
				t.Errorf("%s: no line for %s:\n%s", h, c.name, out)
			}
		}
	}
	flags := map[string][]string{"check": {"-strict"}, "dump": {"-strict"}, "overlay": {"-strict"}, "gen": {"-strict", "-pkg", "-var", "-func", "-o"}}
	for _, c := range commands {
		for _, h := range []string{"-h", "-help", "--help"} {
			code, out, errOut := sspolicy(t, c.name, h)
			if code != 0 || errOut != "" {
				t.Errorf("%s %s: exit %d, stderr %q", c.name, h, code, errOut)
			}
			if !strings.HasPrefix(out, "usage: sspolicy "+c.name) || !strings.Contains(out, c.detail) {
				t.Errorf("%s %s: output lacks usage or description:\n%s", c.name, h, out)
			}
			for _, f := range flags[c.name] {
				if !strings.Contains(out, "  "+f+" ") && !strings.Contains(out, "  "+f+"\n") {
					t.Errorf("%s %s: flag %s not described:\n%s", c.name, h, f, out)
				}
			}
		}
	}
	if code, out, _ := sspolicy(t, "help", "gen"); code != 0 || !strings.HasPrefix(out, "usage: sspolicy gen") {
		t.Errorf("help gen: exit %d\n%s", code, out)
	}
}

// TestUsageErrors: wrong usage exits 2 and says what was wrong.
func TestUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "no command given"},
		{[]string{"frob"}, `unknown command "frob"`},
		{[]string{"check"}, "sspolicy check: no FILE given"},
		{[]string{"check", "-bogus", example}, "flag provided but not defined: -bogus"},
		{[]string{"dump", "a", "b"}, "want exactly one FILE, got 2"},
		{[]string{"overlay", example}, "want BASE and at least one FRAGMENT"},
		{[]string{"gen", "-var", "A", "-func", "B", example}, "-var and -func are exclusive"},
		{[]string{"schema", "x"}, "takes no arguments"},
	} {
		code, out, errOut := sspolicy(t, c.args...)
		if code != 2 || out != "" || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2 and %q", c.args, code, out, errOut, c.want)
		}
	}
}

// TestCheckStreamtypesMistake: "streamtypes" instead of "s" is reported with
// a suggestion and the empty result is pointed out; -strict fails.
func TestCheckStreamtypesMistake(t *testing.T) {
	f := writeFile(t, "st.json", `{"streamtypes": [{"x": {"endpoint": "e.test", "http_method": "GET"}}]}`)
	code, out, _ := sspolicy(t, "check", f)
	if code != 0 || !strings.Contains(out, `unknown key "streamtypes" in the policy (ignored); did you mean "s"?`) ||
		!strings.Contains(out, "warning: the policy defines no streamtypes") {
		t.Errorf("exit %d\n%s", code, out)
	}
	if code, _, _ := sspolicy(t, "check", "-strict", f); code != 1 {
		t.Errorf("-strict: exit %d, want 1", code)
	}
}
