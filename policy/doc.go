// Package policy parses, validates, resolves, overlays and generates Secure
// Streams policy databases (docs/policy.md, docs/policy-language.md).
//
// Parse turns policy JSON (with the '#' comments and trailing array commas
// libwebsockets accepts) into an immutable *Policy whose references are
// resolved to pointers and whose ${name} templates are precompiled, plus a
// list of Diagnostics, each with a JSON path, line and column. ApplyOverlay
// patches streamtypes into a new policy; Generate emits Go source that builds
// an equal policy with no JSON parsing at run time (cmd/sspolicy gen). The
// package does no networking and no logging.
package policy

// The policy reference and JSON Schema in docs/ are generated from the key tables.
//go:generate go test -run TestGeneratedReference -args -update
