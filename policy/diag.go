package policy

import (
	"errors"
	"strconv"
	"strings"
)

// Severity says whether a Diagnostic stops a policy from loading.
type Severity uint8

// Severities.
const (
	SeverityWarning Severity = 1
	SeverityError   Severity = 2
)

// String returns "warning" or "error".
func (s Severity) String() string {
	switch s {
	case SeverityWarning:
		return "warning"
	case SeverityError:
		return "error"
	}
	return "severity(" + itoa(int(s)) + ")"
}

// Code is the stable short identifier of a diagnostic (docs/policy-language.md §1.3).
type Code string

// Diagnostic codes (docs/policy-language.md §1.3).
const (
	CodeSyntax             Code = "syntax"
	CodeTruncated          Code = "truncated"
	CodeTrailingData       Code = "trailing-data"
	CodeType               Code = "type"
	CodeNonInteger         Code = "non-integer"
	CodeRange              Code = "range"
	CodeFormat             Code = "format"
	CodeCoerced            Code = "coerced"
	CodeUnknownKey         Code = "unknown-key"
	CodeUnknownValue       Code = "unknown-value"
	CodeDeprecatedKey      Code = "deprecated-key"
	CodeDuplicateKey       Code = "duplicate-key"
	CodeDuplicateName      Code = "duplicate-name"
	CodeMissingKey         Code = "missing-key"
	CodeEmptyName          Code = "empty-name"
	CodeUnknownRef         Code = "unknown-ref"
	CodeWrongKind          Code = "wrong-kind"
	CodeBadCert            Code = "bad-cert"
	CodeKeyMismatch        Code = "key-mismatch"
	CodeEmptyStack         Code = "empty-stack"
	CodeTooMany            Code = "too-many"
	CodeSchemaVersion      Code = "schema-version"
	CodeUndeclaredMetadata Code = "undeclared-metadata"
	CodeBadSubstitution    Code = "bad-substitution"
	CodeNoSubstitution     Code = "no-substitution"
	CodeNotApplicable      Code = "not-applicable"
	CodeConflict           Code = "conflict"
	CodeRideshareCycle     Code = "rideshare-cycle"
	CodeProxyLimit         Code = "proxy-limit"
	CodeMQTTSharedMismatch Code = "mqtt-shared-mismatch"
	CodeOverlaySection     Code = "overlay-section"
	// CodeNoEffect (Warning) marks a key this implementation parses and
	// stores but does not act on (docs/lws-differences.md says why).
	CodeNoEffect Code = "no-effect"
)

// Diagnostic is one error or warning found while loading a policy. Line and
// Col are 1-based (Col counts bytes) and point at the first byte of the
// offending key or value; they are 0 for values that have no source text
// (for example base-policy values revalidated by ApplyOverlay).
type Diagnostic struct {
	Severity Severity
	Code     Code
	Path     string // JSON path (docs/policy-language.md §1.2), "" for the document root
	Line     int
	Col      int
	Msg      string
}

// String formats d as "LINE:COL: error|warning: PATH: MESSAGE [CODE]"
// (the PATH part is left out for the document root).
func (d Diagnostic) String() string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(d.Line))
	b.WriteByte(':')
	b.WriteString(strconv.Itoa(d.Col))
	b.WriteString(": ")
	b.WriteString(d.Severity.String())
	b.WriteString(": ")
	if d.Path != "" {
		b.WriteString(d.Path)
		b.WriteString(": ")
	}
	b.WriteString(d.Msg)
	b.WriteString(" [")
	b.WriteString(string(d.Code))
	b.WriteByte(']')
	return b.String()
}

// ErrInvalid is matched (errors.Is) by every error returned for a policy that
// fails to load.
var ErrInvalid = errors.New("ss: invalid policy")

// Error is one error diagnostic as a Go error.
type Error struct {
	Code Code
	Path string
	Line int
	Col  int
	Msg  string
}

// Error formats e like a diagnostic.
func (e *Error) Error() string {
	return "ss: policy: " + Diagnostic{Severity: SeverityError, Code: e.Code, Path: e.Path, Line: e.Line, Col: e.Col, Msg: e.Msg}.String()
}

// Unwrap returns ErrInvalid.
func (e *Error) Unwrap() error { return ErrInvalid }

// ErrorList is the error returned when a policy has more than one error. It
// unwraps to its elements, so errors.As(err, &*Error) finds the first one.
type ErrorList []*Error

// Error joins the messages of all errors, one per line.
func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap returns the errors of the list.
func (l ErrorList) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// errorOf builds the error value for the error diagnostics in diags, or nil.
func errorOf(diags []Diagnostic) error {
	var list ErrorList
	for _, d := range diags {
		if d.Severity == SeverityError {
			list = append(list, &Error{Code: d.Code, Path: d.Path, Line: d.Line, Col: d.Col, Msg: d.Msg})
		}
	}
	switch len(list) {
	case 0:
		return nil
	case 1:
		return list[0]
	}
	return list
}
