package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/securestreams/ss/policy"
)

// newFlags returns a flag set that reports to stderr and never exits.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("sspolicy "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseArgs parses flags that may appear before, between or after the
// positional arguments, and returns the positional arguments.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, bool) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, false
		}
		args = fs.Args()
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
	fs := newFlags("check", stderr)
	strict := fs.Bool("strict", false, "report warnings as errors")
	pos, ok := parseArgs(fs, args)
	if !ok {
		return 2
	}
	if len(pos) == 0 {
		fmt.Fprintln(stderr, "usage: sspolicy check [--strict] FILE...")
		return 2
	}
	status := 0
	for _, file := range pos {
		if _, ok := load(stdout, file, *strict); !ok {
			status = 1
		}
	}
	return status
}

func cmdDump(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("dump", stderr)
	strict := fs.Bool("strict", false, "report warnings as errors")
	pos, ok := parseArgs(fs, args)
	if !ok {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "usage: sspolicy dump [--strict] FILE")
		return 2
	}
	p, loaded := load(stderr, pos[0], *strict)
	if !loaded {
		return 1
	}
	dump(stdout, pos[0], p)
	return 0
}

func cmdFmt(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("fmt", stderr)
	pos, ok := parseArgs(fs, args)
	if !ok {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "usage: sspolicy fmt FILE")
		return 2
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
	fs := newFlags("overlay", stderr)
	strict := fs.Bool("strict", false, "report warnings as errors")
	pos, ok := parseArgs(fs, args)
	if !ok {
		return 2
	}
	if len(pos) < 2 {
		fmt.Fprintln(stderr, "usage: sspolicy overlay [--strict] BASE FRAGMENT...")
		return 2
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
	fs := newFlags("gen", stderr)
	strict := fs.Bool("strict", false, "refuse to generate when there are warnings")
	pkg := fs.String("pkg", "policydata", "package name of the generated file")
	varName := fs.String("var", "", "declare a package-level variable NAME holding the policy (default Policy)")
	funcName := fs.String("func", "", "declare func NAME() *policy.Policy instead of a variable")
	out := fs.String("o", "", "write to this file instead of standard output")
	pos, ok := parseArgs(fs, args)
	if !ok {
		return 2
	}
	if len(pos) != 1 || (*varName != "" && *funcName != "") {
		fmt.Fprintln(stderr, "usage: sspolicy gen [--strict] [-pkg NAME] [-var NAME | -func NAME] [-o OUT] FILE")
		return 2
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
