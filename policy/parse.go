package policy

import (
	"os"
	"sort"
)

// supportedSchema is the newest policy schema-version this parser supports.
const supportedSchema = 1

// Options controls parsing. The zero value is the normal, lenient mode.
type Options struct {
	// Strict reports every warning as an error with the same code, so a
	// policy with warnings fails to load (sspolicy check --strict).
	Strict bool
}

// Parse parses and validates a policy document. It returns the policy and
// its warnings, or, when there is any error, a nil policy, every diagnostic
// found and an error (a *Error, or an ErrorList when there are several)
// that matches ErrInvalid. The input is never interpreted as a file name.
// Parse never panics, whatever the input.
func Parse(data []byte, opts Options) (*Policy, []Diagnostic, error) {
	root, syn := parseJSON(data)
	if syn != nil {
		diags := []Diagnostic{*syn}
		return nil, diags, errorOf(diags)
	}
	d := newDecoder(opts)
	d.document(root)
	d.resolve()
	return d.finish()
}

// ParseFile reads and parses the policy file at name.
func ParseFile(name string, opts Options) (*Policy, []Diagnostic, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, nil, err
	}
	return Parse(data, opts)
}

// finish applies strict mode, orders the diagnostics by position and builds
// the result.
func (d *decoder) finish() (*Policy, []Diagnostic, error) {
	if d.opts.Strict {
		for i := range d.diags {
			d.diags[i].Severity = SeverityError
		}
	}
	sort.SliceStable(d.diags, func(i, j int) bool {
		a, b := &d.diags[i], &d.diags[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	if err := errorOf(d.diags); err != nil {
		return nil, d.diags, err
	}
	return d.pol, d.diags, nil
}
