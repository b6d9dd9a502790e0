package policy

import "math"

// The key tables of the sections other than s (streamtype keys are stKeys in
// streamtype.go). The decoder takes its known keys from these tables; the
// policy reference (docs/policy.md) and the JSON Schema
// (docs/policy.schema.json) are generated from them and keyDocs
// (go generate ./policy/...). A key added to a decoder switch must be added
// here, or the decoder reports it as unknown (TestKeyTablesMatchDecoder).
var (
	topKeyTable = []stKey{
		{name: "$schema", kind: kStr},
		{name: "release", kind: kStr},
		{name: "product", kind: kStr},
		{name: "schema-version", kind: kUint, min: 0, max: math.MaxInt64},
		{name: "via-socks5", kind: kSpecial},
		{name: "retry", kind: kSpecial},
		{name: "certs", kind: kSpecial},
		{name: "trust_stores", kind: kSpecial},
		{name: "auth", kind: kSpecial},
		{name: "metrics", kind: kSpecial},
		{name: "s", kind: kSpecial},
	}
	retryKeyTable = []stKey{
		{name: "backoff", kind: kSpecial},
		{name: "conceal", kind: kUint, min: 0, max: 65535},
		{name: "jitterpc", kind: kUint, min: 0, max: 100},
		{name: "svalidping", kind: kUint, min: 0, max: 65535},
		{name: "svalidhup", kind: kUint, min: 0, max: 65535},
	}
	trustStoreKeyTable = []stKey{
		{name: "name", kind: kStr},
		{name: "stack", kind: kSpecial},
	}
	authKeyTable = []stKey{
		{name: "name", kind: kStr},
		{name: "type", kind: kSpecial},
		{name: "streamtype", kind: kRef},
		{name: "blob", kind: kUint, min: 0, max: 3},
	}
	metricsKeyTable = []stKey{
		{name: "name", kind: kStr},
		{name: "us_schedule", kind: kUint, min: 0, max: math.MaxInt64},
		{name: "us_halflife", kind: kUint, min: 0, max: math.MaxUint32},
		{name: "min_outlier", kind: kUint, min: 0, max: 255},
		{name: "report", kind: kStr},
	}
)

// keySection is one object kind of the policy and its key table.
type keySection struct {
	prefix string // keyDocs prefix: "" for top level, else "retry." etc.
	title  string
	keys   []stKey
}

// keySections lists every table in reference order.
func keySections() []keySection {
	return []keySection{
		{"", "Top level", topKeyTable},
		{"retry.", "retry[].<name>", retryKeyTable},
		{"trust_stores.", "trust_stores[]", trustStoreKeyTable},
		{"auth.", "auth[]", authKeyTable},
		{"metrics.", "metrics[]", metricsKeyTable},
		{"s.", "s[].<streamtype>", stKeys},
	}
}

func keyNames(t []stKey) []string {
	names := make([]string, len(t))
	for i, k := range t {
		names[i] = k.name
	}
	return names
}

var (
	topKeys        = keyNames(topKeyTable)
	retryKeys      = keyNames(retryKeyTable)
	trustStoreKeys = keyNames(trustStoreKeyTable)
	authKeys       = keyNames(authKeyTable)
	metricsKeys    = keyNames(metricsKeyTable)
)

// keyMistakes maps top-level keys people write by mistake to the real key,
// for "did you mean" when edit distance finds nothing close.
var keyMistakes = map[string]string{
	"streamtypes": "s", "streamtype": "s", "streams": "s", "stream": "s",
	"retries": "retry", "trust_store": "trust_stores", "truststores": "trust_stores",
	"cert": "certs", "certificates": "certs",
}

// keyDoc documents one key for the generated reference and schema.
type keyDoc struct {
	typ     string // the JSON type as users read it
	def     string // the default when absent
	doc     string // meaning and checks
	example string // a JSON value, "" to derive one from the kind
	lws     string // how libwebsockets differs, "" when it does not
	schema  string // JSON Schema of the value, required for kSpecial keys
}
