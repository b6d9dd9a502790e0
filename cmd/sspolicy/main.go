// Command sspolicy checks, prints, formats, overlays and compiles Secure
// Streams policies, and prints their JSON Schema (see docs/policy-language.md
// §9 and docs/policy.md).
//
//	sspolicy check [-strict] FILE...
//	sspolicy dump [-strict] FILE
//	sspolicy fmt FILE
//	sspolicy overlay [-strict] BASE FRAGMENT...
//	sspolicy gen [-strict] [-pkg NAME] [-var NAME | -func NAME] [-o OUT] FILE
//	sspolicy schema
//
// Diagnostics are printed as FILE:LINE:COL: error|warning: PATH: MESSAGE [CODE].
// Exit status: 0 success (warnings allowed unless -strict), 1 when a policy
// has errors or cannot be read, 2 on usage errors. "sspolicy -h" and
// "sspolicy COMMAND -h" describe every command and flag.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// command is one sspolicy subcommand.
type command struct {
	name     string
	synopsis string // arguments after the command name
	summary  string // one line for the command list
	detail   string // the paragraph of COMMAND -h
	run      func(args []string, stdout, stderr io.Writer) int
}

var commands []command

func init() {
	commands = []command{
		{"check", "[-strict] FILE...", "parse and validate policies, print every diagnostic",
			"Parses each FILE and prints one line per diagnostic: FILE:LINE:COL: error|warning: PATH: MESSAGE [CODE]. Exits 1 when any file has an error (or, with -strict, a warning).", cmdCheck},
		{"dump", "[-strict] FILE", "print a policy as the parser resolved it",
			"Parses FILE and prints a readable summary: sections, every streamtype with its effective values and resolved references.", cmdDump},
		{"fmt", "FILE", "print a policy reformatted",
			"Prints FILE with canonical indentation, keeping comments, key order and values.", cmdFmt},
		{"overlay", "[-strict] BASE FRAGMENT...", "apply overlays and print the resulting policy",
			"Applies each FRAGMENT (a policy fragment with an \"s\" section) to BASE in order, validates the result and prints it as JSON.", cmdOverlay},
		{"gen", "[-strict] [-pkg NAME] [-var NAME | -func NAME] [-o OUT] FILE", "generate Go code that builds the policy (static policies)",
			"Emits Go source that constructs the same *policy.Policy as parsing FILE, with no JSON parsing at run time (the counterpart of libwebsockets' policy2c). Use it from //go:generate.", cmdGen},
		{"schema", "", "print the policy JSON Schema",
			"Prints the JSON Schema (draft 2020-12) of a policy, generated from the parser's key tables; the same as docs/policy.schema.json. Editors use it to validate and complete policies.", cmdSchema},
	}
}

func lookup(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

// usage writes the top-level help.
func usage(w io.Writer) {
	fmt.Fprint(w, "sspolicy checks, prints, formats, overlays and compiles Secure Streams policies.\n\nUsage:\n  sspolicy COMMAND [flags] [arguments]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, "\nRun \"sspolicy COMMAND -h\" for a command's flags. Exit status: 0 success, 1 a policy has errors\nor cannot be read, 2 usage error. The policy keys are described in docs/policy.md.\n")
}

// run executes one sspolicy command and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "sspolicy: no command given")
		usage(stderr)
		return 2
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(rest) > 0 {
			if c := lookup(rest[0]); c != nil {
				return c.run([]string{"-h"}, stdout, stderr)
			}
		}
		usage(stdout)
		return 0
	}
	c := lookup(name)
	if c == nil {
		fmt.Fprintf(stderr, "sspolicy: unknown command %q (commands: %s)\n", name, commandNames())
		return 2
	}
	return c.run(rest, stdout, stderr)
}

func commandNames() string {
	names := make([]string, len(commands))
	for i, c := range commands {
		names[i] = c.name
	}
	return strings.Join(names, ", ")
}
