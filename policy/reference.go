package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Schema returns the JSON Schema (draft 2020-12) of a policy document,
// generated from the parser's key tables: editors use it to validate and
// complete policies, and `sspolicy schema` prints it. It describes the
// canonical form: the coercions the parser accepts with a warning (numbers
// as strings, 0/1 as booleans) and the '#' comments are not part of it.
func Schema() []byte {
	b, err := renderSchema()
	if err != nil {
		panic("policy: schema table: " + err.Error()) // the tables are constants; TestGeneratedReference proves they render
	}
	return b
}

// docFor returns the documentation entry of key k in section sec.
func docFor(sec keySection, k stKey) (keyDoc, bool) {
	d, ok := keyDocs[sec.prefix+k.name]
	return d, ok
}

// keySchema returns the JSON Schema of one key's value.
func keySchema(sec keySection, k stKey) (map[string]any, error) {
	d, ok := docFor(sec, k)
	if !ok {
		return nil, fmt.Errorf("key %q has no keyDocs entry", sec.prefix+k.name)
	}
	var s map[string]any
	switch {
	case d.schema != "":
		if err := json.Unmarshal([]byte(d.schema), &s); err != nil {
			return nil, fmt.Errorf("key %q: schema: %v", sec.prefix+k.name, err)
		}
	case k.kind == kBool:
		s = map[string]any{"type": "boolean"}
	case k.kind == kUint:
		s = map[string]any{"type": "integer", "minimum": k.min, "maximum": k.max}
	case k.kind == kStr || k.kind == kHeader || k.kind == kSubst || k.kind == kRef:
		s = map[string]any{"type": "string"}
	default:
		return nil, fmt.Errorf("key %q is special and its keyDocs entry has no schema", sec.prefix+k.name)
	}
	s["description"] = plainText(d.doc)
	return s, nil
}

// objectSchema returns the schema of an object made of one section's keys.
func objectSchema(sec keySection, required ...string) (map[string]any, error) {
	props := map[string]any{}
	for _, k := range sec.keys {
		s, err := keySchema(sec, k)
		if err != nil {
			return nil, err
		}
		props[k.name] = s
	}
	o := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		o["required"] = required
	}
	return o, nil
}

func renderSchema() ([]byte, error) {
	secs := keySections()
	defs := map[string]any{}
	var top map[string]any
	for _, sec := range secs {
		var req []string
		switch sec.prefix {
		case "trust_stores.":
			req = []string{"name", "stack"}
		case "auth.", "metrics.":
			req = []string{"name"}
		}
		o, err := objectSchema(sec, req...)
		if err != nil {
			return nil, err
		}
		switch sec.prefix {
		case "":
			top = o
		case "s.":
			defs["streamtype"] = o
		default:
			defs[strings.TrimSuffix(sec.prefix, ".")] = o
		}
	}
	top["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	top["$id"] = "https://github.com/securestreams/ss/docs/policy.schema.json"
	top["title"] = "Secure Streams policy"
	top["description"] = "A Secure Streams policy database (github.com/securestreams/ss). Reference: docs/policy.md."
	top["$defs"] = defs
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(top); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// plainText drops markdown emphasis and code ticks for schema descriptions.
func plainText(s string) string {
	return strings.NewReplacer("`", "", "**", "").Replace(s)
}

// appliesText says which protocols and roles a streamtype key applies to.
func appliesText(m appMask) string {
	if m == aAll {
		return "every protocol, clients and servers"
	}
	protos := []Protocol{H1, H2, H3, WS, MQTT, Raw}
	list := func(server bool) []string {
		var out []string
		for _, p := range protos {
			if m&roleMask(p, server) != 0 {
				out = append(out, p.String())
			}
		}
		return out
	}
	var parts []string
	if c := list(false); len(c) == len(protos) {
		parts = append(parts, "clients of every protocol")
	} else if len(c) > 0 {
		parts = append(parts, strings.Join(c, ", ")+" clients")
	}
	if s := list(true); len(s) == len(protos) {
		parts = append(parts, "servers")
	} else if len(s) > 0 {
		parts = append(parts, strings.Join(s, ", ")+" servers")
	}
	return strings.Join(parts, "; ")
}

// exampleValue returns the example JSON value of a key.
func exampleValue(k stKey, d keyDoc) string {
	if d.example != "" {
		return d.example
	}
	switch k.kind {
	case kBool:
		return "true"
	case kUint:
		if k.max < 10 {
			return strconv.FormatInt(k.max, 10)
		}
		return strconv.FormatInt(max(k.min, 1), 10)
	}
	return `"..."`
}

// anchor is the markdown anchor of a key's heading.
func anchor(sec keySection, name string) string {
	pre := strings.TrimSuffix(sec.prefix, ".")
	if pre == "" {
		pre = "top"
	}
	return pre + "-" + strings.NewReplacer("_", "-", "$", "").Replace(name)
}

// renderReference renders docs/policy.md.
func renderReference() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(referenceHeader)
	for _, sec := range keySections() {
		fmt.Fprintf(&b, "- [`%s`](#%s):", sec.title, sectionAnchor(sec))
		for i, k := range sec.keys {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, " [`%s`](#%s)", k.name, anchor(sec, k.name))
		}
		b.WriteString("\n")
	}
	for _, sec := range keySections() {
		fmt.Fprintf(&b, "\n<a id=\"%s\"></a>\n## `%s`\n\n%s\n", sectionAnchor(sec), sec.title, sectionIntro[sec.prefix])
		for _, k := range sec.keys {
			d, ok := docFor(sec, k)
			if !ok {
				return nil, fmt.Errorf("key %q has no keyDocs entry", sec.prefix+k.name)
			}
			fmt.Fprintf(&b, "\n<a id=\"%s\"></a>\n### `%s`\n\n", anchor(sec, k.name), k.name)
			fmt.Fprintf(&b, "- **Type:** %s\n", d.typ)
			if d.def != "" && d.def != "–" {
				fmt.Fprintf(&b, "- **Default:** %s\n", d.def)
			}
			if sec.prefix == "s." {
				fmt.Fprintf(&b, "- **Applies to:** %s\n", appliesText(k.applies))
			}
			fmt.Fprintf(&b, "- **Example:** `\"%s\": %s`\n", k.name, exampleValue(k, d))
			if d.lws != "" {
				fmt.Fprintf(&b, "- **libwebsockets:** %s\n", d.lws)
			}
			fmt.Fprintf(&b, "- **Status:** %s\n", keyStatus(sec, k))
			fmt.Fprintf(&b, "\n%s\n", linkDocs(d.doc))
		}
	}
	return b.Bytes(), nil
}

// keyStatus says whether the library acts on a key: "works", or the
// no-effect warning the parser gives when it is set, and why
// (docs/lws-differences.md).
func keyStatus(sec keySection, k stKey) string {
	switch {
	case sec.prefix == "metrics.":
		return "no effect in this implementation (a `no-effect` warning per metrics policy): " + metricsNoEffect
	case k.noEffect != "":
		return "no effect in this implementation (a `no-effect` warning when set): " + k.noEffect
	}
	return "works"
}

func sectionAnchor(sec keySection) string {
	if sec.prefix == "" {
		return "top-level"
	}
	return "section-" + strings.TrimSuffix(sec.prefix, ".")
}

// linkDocs turns "streams.md §6" style references into links to the docs.
func linkDocs(s string) string {
	for _, f := range []string{"streams.md", "wire.md", "policy-language.md"} {
		s = strings.ReplaceAll(s, f+" §", "["+f+"]("+f+") §")
	}
	return s
}

const referenceHeader = `<!-- Code generated by go generate ./policy/... from the parser's key tables (policy/keys.go, policy/streamtype.go, policy/keydocs.go); DO NOT EDIT. -->

# Policy reference

Every key the policy parser accepts, generated from the parser's own key tables, so this page
and the parser cannot disagree. The syntax, names and references, ` + "`${name}`" + ` substitution,
overlays and the complete example are in [policy-language.md](policy-language.md). Editors can
validate and complete policies with the JSON Schema [policy.schema.json](policy.schema.json)
(` + "`sspolicy schema`" + ` prints it; add ` + "`\"$schema\": \"./policy.schema.json\"`" + ` to a policy to use it).

Rules that hold for every key:

- An unknown key is a warning (` + "`unknown-key`" + `, with a "did you mean" when one is close) and is
  ignored; ` + "`sspolicy check --strict`" + ` makes it an error. libwebsockets silently ignores unknown
  top-level keys and turns unknown streamtype keys into phantom streamtypes.
- Booleans are assigned: ` + "`false`" + ` clears a flag (libwebsockets can only set flags, from a literal
  ` + "`true`" + `). ` + "`0`" + ` and ` + "`1`" + ` are accepted for booleans, and numeric strings for integers, with a
  warning; any other type mismatch, non-integer or out-of-range value is an error with its JSON path
  and line:column.
- A streamtype key that does not apply to the streamtype's protocol or role ("Applies to") is a
  ` + "`not-applicable`" + ` warning and has no effect.

Sections:

`

var sectionIntro = map[string]string{
	"":              "The policy is one JSON object. Every section is optional; `{}` is a valid policy with no streamtypes.",
	"retry.":        "`\"retry\": [ { \"<name>\": { <keys> }, ... } ]`: named retry and backoff policies, referenced by a streamtype's `retry`. A streamtype without `retry` gets no retries: its first failure is final.",
	"trust_stores.": "`\"trust_stores\": [ {\"name\": \"ts\", \"stack\": [\"c1\"]}, {\"ts2\": [\"c3\"]} ]`: named CA sets, referenced by a streamtype's `tls_trust_store`. Two element shapes are accepted: the keys below, or an object whose every member is a store (name → array of `certs` names). Each stack entry must name a `certs` entry holding a certificate; an empty stack is an error. `certs` itself is `[ { \"<name>\": \"<base64 DER>\" } ]`: every entry is decoded and parsed at load as an X.509 certificate or a private key (PKCS#8, PKCS#1 RSA or SEC1 EC).",
	"auth.":         "`\"auth\": [ { <keys> } ]`: auth schemes, referenced by a streamtype's `use_auth`.",
	"metrics.":      "`\"metrics\": [ { <keys> } ]`: metrics reporting policies, kept in `Policy.Metrics` for the application. This library has no metrics exporter: each policy gets a `no-effect` warning. They do not change stream behaviour.",
	"s.":            "`\"s\": [ { \"<streamtype>\": { <keys> }, ... } ]`: the streamtypes. The name is any non-empty string; names longer than 31 bytes cannot be created through the proxy. A repeated name replaces the earlier definition (with a warning).",
}
