package policy

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file turns a Policy back into policy JSON. The result parses to a
// policy equal to the original (the basis of ApplyOverlay and of
// sspolicy fmt/overlay).

func strNode(s string) *node  { return &node{kind: nString, text: s} }
func intNode(v int64) *node   { return &node{kind: nNumber, text: strconv.FormatInt(v, 10)} }
func uintNode(v uint64) *node { return &node{kind: nNumber, text: strconv.FormatUint(v, 10)} }
func boolNode(b bool) *node {
	if b {
		return &node{kind: nTrue}
	}
	return &node{kind: nFalse}
}

type objBuilder struct{ n *node }

func newObj() objBuilder { return objBuilder{&node{kind: nObject}} }

func (o objBuilder) set(key string, v *node) {
	o.n.members = append(o.n.members, member{key: key, val: v})
}

func arrNode(elems ...*node) *node { return &node{kind: nArray, elems: elems} }

// MarshalJSON returns the canonical policy JSON of p: every section, every
// streamtype key whose value differs from its default, no comments. Parsing
// the result gives a policy equal to p.
func (p *Policy) MarshalJSON() ([]byte, error) {
	if msg := checkNoNil(p); msg != "" {
		return nil, fmt.Errorf("%w: %s", ErrInvalid, msg)
	}
	var buf bytes.Buffer
	writeJSON(&buf, encodePolicy(p), 0)
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

func encodePolicy(p *Policy) *node {
	root := newObj()
	if p.Release != "" {
		root.set("release", strNode(p.Release))
	}
	if p.Product != "" {
		root.set("product", strNode(p.Product))
	}
	root.set("schema-version", intNode(int64(p.SchemaVersion)))
	if p.ViaSOCKS5 != "" {
		root.set("via-socks5", strNode(p.ViaSOCKS5))
	}
	if len(p.Retry) > 0 {
		all := newObj()
		for _, r := range p.Retry {
			all.set(r.Name, encodeRetry(r))
		}
		root.set("retry", arrNode(all.n))
	}
	if len(p.Certs) > 0 {
		all := newObj()
		for _, c := range p.Certs {
			all.set(c.Name, strNode(base64.StdEncoding.EncodeToString(c.DER)))
		}
		root.set("certs", arrNode(all.n))
	}
	if len(p.TrustStores) > 0 {
		arr := arrNode()
		for _, ts := range p.TrustStores {
			o := newObj()
			o.set("name", strNode(ts.Name))
			stack := arrNode()
			for _, c := range ts.Stack {
				stack.elems = append(stack.elems, strNode(c.Name))
			}
			o.set("stack", stack)
			arr.elems = append(arr.elems, o.n)
		}
		root.set("trust_stores", arr)
	}
	if len(p.Auth) > 0 {
		arr := arrNode()
		for _, a := range p.Auth {
			arr.elems = append(arr.elems, encodeAuth(a))
		}
		root.set("auth", arr)
	}
	if len(p.Metrics) > 0 {
		arr := arrNode()
		for _, m := range p.Metrics {
			o := newObj()
			o.set("name", strNode(m.Name))
			if m.USSchedule != 0 {
				o.set("us_schedule", uintNode(m.USSchedule))
			}
			if m.USHalflife != 0 {
				o.set("us_halflife", uintNode(uint64(m.USHalflife)))
			}
			if m.MinOutlier != 0 {
				o.set("min_outlier", uintNode(uint64(m.MinOutlier)))
			}
			if m.Report != "" {
				o.set("report", strNode(m.Report))
			}
			arr.elems = append(arr.elems, o.n)
		}
		root.set("metrics", arr)
	}
	if len(p.Streamtypes) > 0 {
		all := newObj()
		for _, st := range p.Streamtypes {
			all.set(st.Name, encodeStreamtype(st))
		}
		root.set("s", arrNode(all.n))
	}
	return root.n
}

func encodeRetry(r *Retry) *node {
	o := newObj()
	if len(r.Backoff) > 0 {
		arr := arrNode()
		for _, b := range r.Backoff {
			arr.elems = append(arr.elems, uintNode(uint64(b)))
		}
		o.set("backoff", arr)
	}
	if r.Conceal != 0 {
		o.set("conceal", uintNode(uint64(r.Conceal)))
	}
	o.set("jitterpc", uintNode(uint64(r.JitterPct)))
	if r.SValidPing != 0 {
		o.set("svalidping", uintNode(uint64(r.SValidPing)))
	}
	if r.SValidHup != 0 {
		o.set("svalidhup", uintNode(uint64(r.SValidHup)))
	}
	return o.n
}

func (t AuthType) String() string {
	switch t {
	case AuthToken:
		return "token"
	case AuthSigV4:
		return "sigv4"
	case AuthLWA:
		return "lwa"
	case AuthJWT:
		return "jwt"
	}
	return "authtype(" + itoa(int(t)) + ")"
}

func encodeAuth(a *Auth) *node {
	o := newObj()
	o.set("name", strNode(a.Name))
	switch {
	case a.TypeName != "":
		o.set("type", strNode(a.TypeName))
	case a.Type != AuthToken:
		o.set("type", strNode(a.Type.String()))
	}
	if a.StreamtypeName != "" {
		o.set("streamtype", strNode(a.StreamtypeName))
	}
	if a.Blob != 0 {
		o.set("blob", uintNode(uint64(a.Blob)))
	}
	return o.n
}

// encodeStreamtype emits every key of st whose value is not the default, in
// key-table order.
func encodeStreamtype(st *Streamtype) *node {
	o := newObj()
	for id := range stKeys {
		k := &stKeys[id]
		switch k.kind {
		case kBool:
			if *k.b(st) {
				o.set(k.name, boolNode(true))
			}
		case kUint:
			v := getInt(k.u(st))
			// A server's port is required (even 0, an ephemeral port)
			// unless it listens on a unix socket or shares a listener.
			serverPort := id == kidPort && st.Server && !strings.HasPrefix(st.Endpoint, "+") && !strings.HasPrefix(st.Endpoint, "!")
			if (id == kidClientCert && v >= 0) || (id != kidClientCert && v != 0) || serverPort {
				o.set(k.name, intNode(v))
			}
		case kStr, kHeader, kSubst, kRef:
			if id == kidMultipartContentType {
				continue // the same field as http_mime_content_type
			}
			if s := *k.s(st); s != "" {
				o.set(k.name, strNode(s))
			}
		case kSpecial:
			switch id {
			case kidProtocol:
				o.set(k.name, strNode(st.Protocol.String()))
			case kidViaSOCKS5:
				if st.ViaSOCKS5Own != "" {
					o.set(k.name, strNode(st.ViaSOCKS5Own))
				}
			case kidMetadata:
				if len(st.Metadata) > 0 {
					arr := arrNode()
					for _, m := range st.Metadata {
						e := newObj()
						raw := m.HeaderRaw
						if raw == "" && m.Header != "" {
							raw = m.Header + ":"
						}
						e.set(m.Name, strNode(raw))
						arr.elems = append(arr.elems, e.n)
					}
					o.set(k.name, arr)
				}
			case kidURLPreencoded:
				arr := arrNode()
				for _, m := range st.Metadata {
					if m.PreEncoded {
						arr.elems = append(arr.elems, strNode(m.Name))
					}
				}
				if len(arr.elems) > 0 {
					o.set(k.name, arr)
				}
			case kidRespMap:
				if len(st.HTTPRespMap) > 0 {
					arr := arrNode()
					for _, e := range st.HTTPRespMap {
						eo := newObj()
						eo.set(strconv.Itoa(e.Status), uintNode(uint64(e.State)))
						arr.elems = append(arr.elems, eo.n)
					}
					o.set(k.name, arr)
				}
			case kidOptions:
				if len(st.Options) > 0 {
					arr := arrNode()
					for _, op := range st.Options {
						eo := newObj()
						eo.set(op.Name, strNode(op.Value))
						arr.elems = append(arr.elems, eo.n)
					}
					o.set(k.name, arr)
				}
			}
		}
	}
	return o.n
}

// Format returns data reformatted as canonical, strict JSON: two-space
// indentation, comments and trailing commas dropped, key order and values
// kept (including unknown keys). Only syntax is checked.
func Format(data []byte) ([]byte, error) {
	root, syn := parseJSON(data)
	if syn != nil {
		return nil, errorOf([]Diagnostic{*syn})
	}
	var buf bytes.Buffer
	writeJSON(&buf, root, 0)
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

func scalar(n *node) bool { return n.kind != nObject && n.kind != nArray }

func writeIndent(buf *bytes.Buffer, n int) {
	buf.WriteByte('\n')
	for i := 0; i < n; i++ {
		buf.WriteString("  ")
	}
}

func writeJSON(buf *bytes.Buffer, n *node, indent int) {
	switch n.kind {
	case nObject:
		if len(n.members) == 0 {
			buf.WriteString("{}")
			return
		}
		buf.WriteByte('{')
		for i := range n.members {
			m := &n.members[i]
			if i > 0 {
				buf.WriteByte(',')
			}
			writeIndent(buf, indent+1)
			writeString(buf, m.key)
			buf.WriteString(": ")
			writeJSON(buf, m.val, indent+1)
		}
		writeIndent(buf, indent)
		buf.WriteByte('}')
	case nArray:
		if len(n.elems) == 0 {
			buf.WriteString("[]")
			return
		}
		inline := true
		for _, e := range n.elems {
			inline = inline && scalar(e)
		}
		buf.WriteByte('[')
		for i, e := range n.elems {
			if i > 0 {
				buf.WriteByte(',')
				if inline {
					buf.WriteByte(' ')
				}
			}
			if !inline {
				writeIndent(buf, indent+1)
			}
			writeJSON(buf, e, indent+1)
		}
		if !inline {
			writeIndent(buf, indent)
		}
		buf.WriteByte(']')
	case nString:
		writeString(buf, n.text)
	case nNumber:
		buf.WriteString(n.text)
	case nTrue:
		buf.WriteString("true")
	case nFalse:
		buf.WriteString("false")
	default:
		buf.WriteString("null")
	}
}

const hexDigits = "0123456789abcdef"

func writeString(buf *bytes.Buffer, s string) {
	buf.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				buf.WriteByte('\\')
				buf.WriteByte(c)
			case c == '\n':
				buf.WriteString(`\n`)
			case c == '\r':
				buf.WriteString(`\r`)
			case c == '\t':
				buf.WriteString(`\t`)
			case c < 0x20 || c == 0x7f:
				buf.WriteString(`\u00`)
				buf.WriteByte(hexDigits[c>>4])
				buf.WriteByte(hexDigits[c&0xf])
			default:
				buf.WriteByte(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf.WriteString(`\ufffd`)
		} else {
			buf.WriteString(s[i : i+size])
		}
		i += size
	}
	buf.WriteByte('"')
}

// Setting is one streamtype key and its value as JSON text.
type Setting struct {
	Key   string
	Value string
}

// Settings returns every key of st whose value differs from its default, in
// a fixed key order, with JSON values (for sspolicy dump and logs). Keys
// that are always written (protocol, and http_method when set) are included.
func (st *Streamtype) Settings() []Setting {
	n := encodeStreamtype(st)
	out := make([]Setting, 0, len(n.members))
	for i := range n.members {
		var buf bytes.Buffer
		writeCompact(&buf, n.members[i].val)
		out = append(out, Setting{Key: n.members[i].key, Value: buf.String()})
	}
	return out
}

func writeCompact(buf *bytes.Buffer, n *node) {
	switch n.kind {
	case nObject:
		buf.WriteByte('{')
		for i := range n.members {
			if i > 0 {
				buf.WriteString(", ")
			}
			writeString(buf, n.members[i].key)
			buf.WriteString(": ")
			writeCompact(buf, n.members[i].val)
		}
		buf.WriteByte('}')
	case nArray:
		buf.WriteByte('[')
		for i, e := range n.elems {
			if i > 0 {
				buf.WriteString(", ")
			}
			writeCompact(buf, e)
		}
		buf.WriteByte(']')
	default:
		writeJSON(buf, n, 0)
	}
}
