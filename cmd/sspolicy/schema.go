package main

import (
	"io"

	"github.com/securestreams/ss/policy"
)

// cmdSchema prints the policy JSON Schema (the same as docs/policy.schema.json).
func cmdSchema(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("schema", stdout, stderr)
	pos, ok := parseArgs(fs, args)
	if !ok {
		return fs.status
	}
	if len(pos) != 0 {
		return fs.usageError("takes no arguments, got %q", pos)
	}
	stdout.Write(policy.Schema())
	return 0
}
