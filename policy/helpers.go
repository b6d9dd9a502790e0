package policy

import "strings"

// defaultProxyBuflen is the proxy buffer size used when the streamtype
// leaves proxy_buflen at 0 (docs/policy.md).
const defaultProxyBuflen = 32768

// ProxyBuffer returns the effective proxy buffer size and rx flow-control
// thresholds with the defaults of docs/policy.md applied.
func (st *Streamtype) ProxyBuffer() (buflen, onAbove, offBelow uint32) {
	buflen = st.ProxyBuflen
	if buflen == 0 {
		buflen = defaultProxyBuflen
	}
	onAbove = st.ProxyBuflenRxflowOnAbove
	if onAbove == 0 {
		onAbove = buflen
	}
	offBelow = st.ProxyBuflenRxflowOffBelow
	if offBelow == 0 {
		offBelow = onAbove / 2
	}
	return buflen, onAbove, offBelow
}

// Option returns the value of the server option name.
func (st *Streamtype) Option(name string) (string, bool) {
	for _, o := range st.Options {
		if o.Name == name {
			return o.Value, true
		}
	}
	return "", false
}

// IsHTTP reports whether the streamtype's protocol is h1, h2 or h3.
func (st *Streamtype) IsHTTP() bool { return st.Protocol <= H3 }

// reportGlobs returns the comma-separated globs of Report, with the spaces
// around them removed and empty entries dropped.
func (m *Metrics) reportGlobs() []string {
	var out []string
	for _, g := range strings.Split(m.Report, ",") {
		if g = strings.TrimSpace(g); g != "" {
			out = append(out, g)
		}
	}
	return out
}

// Reports reports whether the metric called name matches one of the
// policy's report globs ('*' matches any run of bytes, '?' one byte).
func (m *Metrics) Reports(name string) bool {
	for _, g := range m.reportGlobs() {
		if globMatch(g, name) {
			return true
		}
	}
	return false
}

func globMatch(pattern, s string) bool {
	// Iterative matcher with single-star backtracking: linear in practice.
	p, i := 0, 0
	starP, starI := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			starP, starI = p, i
			p++
		case starP >= 0:
			p = starP + 1
			starI++
			i = starI
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
