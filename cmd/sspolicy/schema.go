package main

import (
	"fmt"
	"io"

	"github.com/securestreams/ss/policy"
)

// cmdSchema prints the policy JSON Schema (the same as docs/policy.schema.json).
func cmdSchema(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("schema", stderr)
	pos, ok := parseArgs(fs, args)
	if !ok {
		return 2
	}
	if len(pos) != 0 {
		fmt.Fprintf(stderr, "sspolicy schema: takes no arguments, got %q\nusage: sspolicy schema\n", pos)
		return 2
	}
	stdout.Write(policy.Schema())
	return 0
}
