package transport

import (
	"strings"

	"github.com/securestreams/ss/policy"
)

// Where a substitution of an endpoint or http_url template lands, which
// decides how its value is checked or encoded (docs/security-validation.md).
type urlPos int

const (
	posPath      urlPos = iota // path or query: percent-encoded (or pre-encoded, checked)
	posAuthority               // the host[:port] of an endpoint URL: no '/', '?', '#', '@', '\'
	posEndpoint                // a whole endpoint or host[:port]: no controls or spaces
	posSocket                  // a unix socket path or abstract name: no controls or spaces
)

// positions classifies every part of t; endpoint says whether t is the
// endpoint template (else it is http_url, all of which is path).
func positions(t *policy.Template, endpoint bool) []urlPos {
	ps := make([]urlPos, len(t.Parts))
	if !endpoint {
		return ps // all posPath
	}
	var lit strings.Builder
	for i, p := range t.Parts {
		if p.Meta < 0 {
			lit.WriteString(p.Lit)
			continue
		}
		prefix := lit.String()
		switch {
		case strings.HasPrefix(t.Raw, "+"):
			ps[i] = posSocket
		case strings.Contains(prefix, "://"):
			rest := prefix[strings.Index(prefix, "://")+3:]
			if strings.ContainsAny(rest, "/?") {
				ps[i] = posPath
			} else {
				ps[i] = posAuthority
			}
		default:
			ps[i] = posEndpoint
		}
	}
	return ps
}

// checkAt checks (and for posPath encodes) value of item at pos.
func checkAt(pos urlPos, item *policy.MetadataItem, field, value string) (string, error) {
	var err error
	switch pos {
	case posPath:
		if !item.PreEncoded {
			return EscapeURLValue(value), nil
		}
		err = CheckPreEncoded(value)
	case posAuthority:
		if err = checkNoControls(value, field); err == nil {
			if i := strings.IndexAny(value, "/?#@\\"); i >= 0 {
				err = &ValueError{Field: field + " (host)", Reason: describeByte(value, i)}
			}
		}
	case posEndpoint, posSocket:
		err = checkNoControls(value, field)
	}
	if err != nil {
		if ve, ok := err.(*ValueError); ok {
			c := *ve
			c.Item, c.Field = item.Name, field
			if pos == posPath {
				c.Field = field + " (pre-encoded)"
			}
			return "", &c
		}
		return "", err
	}
	return value, nil
}

// expandURL expands t, encoding or checking every substituted value for its
// position.
func expandURL(t *policy.Template, st *policy.Streamtype, value func(int) string, endpoint bool, field string) (string, error) {
	var ps []urlPos // nil: every part is path (http_url), no allocation
	if endpoint {
		ps = positions(t, true)
	}
	var b strings.Builder
	b.Grow(len(t.Raw) + 32)
	for i, p := range t.Parts {
		if p.Meta < 0 {
			b.WriteString(p.Lit)
			continue
		}
		if p.Meta >= len(st.Metadata) {
			continue
		}
		pos := posPath
		if ps != nil {
			pos = ps[i]
		}
		v, err := checkAt(pos, st.Metadata[p.Meta], field, value(p.Meta))
		if err != nil {
			return "", err
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

// CheckURLItem checks a value of metadata item i of st against every place
// the streamtype's endpoint and http_url substitute it. Values in a path or
// query are percent-encoded when sent, so only pre-encoded items can fail
// there.
func CheckURLItem(st *policy.Streamtype, i int, value string) error {
	for _, tf := range []struct {
		t        *policy.Template
		endpoint bool
		field    string
	}{{st.EndpointTmpl, true, "endpoint"}, {st.HTTPURLTmpl, false, "http_url"}} {
		if tf.t == nil {
			continue
		}
		ps := positions(tf.t, tf.endpoint)
		for j, p := range tf.t.Parts {
			if p.Meta != i || i >= len(st.Metadata) {
				continue
			}
			if _, err := checkAt(ps[j], st.Metadata[i], tf.field, value); err != nil {
				return err
			}
		}
	}
	return nil
}
