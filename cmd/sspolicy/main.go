// Command sspolicy checks, prints, formats, overlays and compiles Secure
// Streams policies (see spec/policy.md §9).
//
//	sspolicy check [--strict] FILE...
//	sspolicy dump [--strict] FILE
//	sspolicy fmt FILE
//	sspolicy overlay [--strict] BASE FRAGMENT...
//	sspolicy gen [--strict] [-pkg NAME] [-var NAME | -func NAME] [-o OUT] FILE
//	sspolicy schema
//
// Diagnostics are printed as FILE:LINE:COL: error|warning: PATH: MESSAGE [CODE].
// Exit status: 0 success (warnings allowed unless --strict), 1 when a policy
// has errors or cannot be read, 2 on usage errors.
package main

import (
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage:
  sspolicy check [--strict] FILE...
  sspolicy dump [--strict] FILE
  sspolicy fmt FILE
  sspolicy overlay [--strict] BASE FRAGMENT...
  sspolicy gen [--strict] [-pkg NAME] [-var NAME | -func NAME] [-o OUT] FILE
  sspolicy schema
`

// run executes one sspolicy command and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		io.WriteString(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "check":
		return cmdCheck(rest, stdout, stderr)
	case "dump":
		return cmdDump(rest, stdout, stderr)
	case "fmt":
		return cmdFmt(rest, stdout, stderr)
	case "overlay":
		return cmdOverlay(rest, stdout, stderr)
	case "gen":
		return cmdGen(rest, stdout, stderr)
	case "schema":
		return cmdSchema(rest, stdout, stderr)
	case "help", "-h", "-help", "--help":
		io.WriteString(stdout, usage)
		return 0
	}
	io.WriteString(stderr, "sspolicy: unknown command "+cmd+"\n"+usage)
	return 2
}
