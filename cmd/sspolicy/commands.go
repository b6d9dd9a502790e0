package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/securestreams/ss/policy"
)

// cmdFlags is a command's flag set with its help text.
type cmdFlags struct {
	*flag.FlagSet
	cmd            *command
	stdout, stderr io.Writer
	status         int // exit status when parsing stops (0 after -h, 2 after a usage error)
}

// newFlags returns the flag set of command name; it never exits the process.
func newFlags(name string, stdout, stderr io.Writer) *cmdFlags {
	fs := flag.NewFlagSet("sspolicy "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported by parseArgs
	return &cmdFlags{FlagSet: fs, cmd: lookup(name), stdout: stdout, stderr: stderr}
}

// help writes the command's usage, description and flags.
func (f *cmdFlags) help(w io.Writer) {
	fmt.Fprintf(w, "usage: sspolicy %s %s\n\n%s\n", f.cmd.name, f.cmd.synopsis, f.cmd.detail)
	n := 0
	f.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprint(w, "\nFlags:\n")
		f.SetOutput(w)
		f.PrintDefaults()
		f.SetOutput(io.Discard)
	}
}

// usageError reports wrong usage of the command and returns 2.
func (f *cmdFlags) usageError(format string, args ...any) int {
	fmt.Fprintf(f.stderr, "sspolicy %s: %s\nusage: sspolicy %s %s (sspolicy %s -h for help)\n",
		f.cmd.name, fmt.Sprintf(format, args...), f.cmd.name, f.cmd.synopsis, f.cmd.name)
	return 2
}

// parseArgs parses flags that may appear before, between or after the
// positional arguments, and returns the positional arguments. On -h it
// prints the help to stdout; on a bad flag it says what was wrong; both end
// the command with f.status.
func parseArgs(f *cmdFlags, args []string) ([]string, bool) {
	var pos []string
	for {
		if err := f.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				f.help(f.stdout)
				f.status = 0
			} else {
				f.status = f.usageError("%v", err)
			}
			return nil, false
		}
		args = f.Args()
		if len(args) == 0 {
			return pos, true
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// printDiags prints diagnostics in the FILE:LINE:COL format and reports
// whether any is an error.
func printDiags(w io.Writer, file string, diags []policy.Diagnostic) bool {
	bad := false
	for _, d := range diags {
		fmt.Fprintf(w, "%s:%s\n", file, d.String())
		bad = bad || d.Severity == policy.SeverityError
	}
	return bad
}

// load parses one file, printing its diagnostics to w.
func load(w io.Writer, file string, strict bool) (*policy.Policy, bool) {
	data, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintf(w, "%s: error: %v\n", file, err)
		return nil, false
	}
	p, diags, err := policy.Parse(data, policy.Options{Strict: strict})
	printDiags(w, file, diags)
	return p, err == nil
}

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("check", stdout, stderr)
	strict := fs.Bool("strict", false, "report warnings as errors")
	pos, ok := parseArgs(fs, args)
	if !ok {
		return fs.status
	}
	if len(pos) == 0 {
		return fs.usageError("no FILE given")
	}
	status := 0
	for _, file := range pos {
		p, ok := load(stdout, file, *strict)
		if !ok {
			status = 1
			continue
		}
		if len(p.Streamtypes) == 0 { // almost always a mistake ("streamtypes" for "s")
			sev := "warning"
			if *strict {
				sev, status = "error", 1
			}
			fmt.Fprintf(stdout, "%s: %s: the policy defines no streamtypes (its \"s\" section is absent or empty)\n", file, sev)
		}
	}
	return status
}

func cmdDump(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("dump", stdout, stderr)
	strict := fs.Bool("strict", false, "report warnings as errors")
	pos, ok := parseArgs(fs, args)
	if !ok {
		return fs.status
	}
	if len(pos) != 1 {
		return fs.usageError("want exactly one FILE, got %d", len(pos))
	}
	p, loaded := load(stderr, pos[0], *strict)
	if !loaded {
		return 1
	}
	dump(stdout, pos[0], p)
	return 0
}

func cmdFmt(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("fmt", stdout, stderr)
	pos, ok := parseArgs(fs, args)
	if !ok {
		return fs.status
	}
	if len(pos) != 1 {
		return fs.usageError("want exactly one FILE, got %d", len(pos))
	}
	file := pos[0]
	data, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintf(stderr, "%s: error: %v\n", file, err)
		return 1
	}
	out, err := policy.Format(data)
	if err != nil {
		if pe, ok := err.(*policy.Error); ok {
			fmt.Fprintf(stderr, "%s:%d:%d: error: %s [%s]\n", file, pe.Line, pe.Col, pe.Msg, pe.Code)
		} else {
			fmt.Fprintf(stderr, "%s: error: %v\n", file, err)
		}
		return 1
	}
	stdout.Write(out)
	return 0
}

func cmdOverlay(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("overlay", stdout, stderr)
	strict := fs.Bool("strict", false, "report warnings as errors")
	pos, ok := parseArgs(fs, args)
	if !ok {
		return fs.status
	}
	if len(pos) < 2 {
		return fs.usageError("want BASE and at least one FRAGMENT, got %d file(s)", len(pos))
	}
	p, loaded := load(stderr, pos[0], *strict)
	if !loaded {
		return 1
	}
	for _, file := range pos[1:] {
		data, err := os.ReadFile(file)
		if err != nil {
			fmt.Fprintf(stderr, "%s: error: %v\n", file, err)
			return 1
		}
		np, diags, err := policy.ApplyOverlay(p, data, policy.Options{Strict: *strict})
		printDiags(stderr, file, diags)
		if err != nil {
			return 1
		}
		p = np
	}
	out, _ := p.MarshalJSON()
	stdout.Write(out)
	return 0
}

func cmdGen(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("gen", stdout, stderr)
	strict := fs.Bool("strict", false, "refuse to generate when there are warnings")
	pkg := fs.String("pkg", "policydata", "package name of the generated file")
	varName := fs.String("var", "", "declare a package-level variable NAME holding the policy (default Policy)")
	funcName := fs.String("func", "", "declare func NAME() *policy.Policy instead of a variable")
	out := fs.String("o", "", "write to this file instead of standard output")
	pos, ok := parseArgs(fs, args)
	if !ok {
		return fs.status
	}
	if len(pos) != 1 {
		return fs.usageError("want exactly one FILE, got %d", len(pos))
	}
	if *varName != "" && *funcName != "" {
		return fs.usageError("-var and -func are exclusive")
	}
	file := pos[0]
	p, loaded := load(stderr, file, *strict)
	if !loaded {
		return 1
	}
	src, err := policy.Generate(p, policy.GenOptions{Package: *pkg, Var: *varName, Func: *funcName, Source: filepath.Base(file)})
	if err != nil {
		fmt.Fprintf(stderr, "%s: error: %v\n", file, err)
		return 1
	}
	if *out == "" {
		stdout.Write(src)
		return 0
	}
	if err := os.WriteFile(*out, src, 0o644); err != nil {
		fmt.Fprintf(stderr, "%s: error: %v\n", *out, err)
		return 1
	}
	return 0
}
