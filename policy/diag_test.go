package policy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// st1 wraps a streamtype body in a policy with one streamtype "x".
func st1(body string) string { return `{"s": [{"x": {` + body + `}}]}` }

// withSections adds the keysPolicy sections to a streamtype section text.
func withSections(s string) string {
	return `{
  "retry": [{"r1": {"backoff": [10]}}],
  "certs": [{"c": "` + testCertB64 + `", "k": "` + testKeyB64 + `"}],
  "trust_stores": [{"name": "ts", "stack": ["c"]}],
  "auth": [{"name": "sig", "type": "sigv4"}, {"name": "tok"}],
  "s": [` + s + `]
}`
}

type diagCase struct {
	name string
	text string // policy with a § marker before the offending token
	code Code
	path string
	sev  Severity
	msg  string // substring of the message, optional
}

const (
	E = SeverityError
	W = SeverityWarning
)

var diagCases = []diagCase{
	// Syntax (parsing stops at the first one).
	{"unexpected brace", `{"a": §}`, CodeSyntax, "", E, "expected a value"},
	{"brace closes array", `{"s": [1 §}`, CodeSyntax, "", E, "'}' cannot close an array"},
	{"bracket closes object", `{"s": {"a": 1§]}`, CodeSyntax, "", E, "']' cannot close an object"},
	{"bracket closes empty object", `{"s": {§]}`, CodeSyntax, "", E, "']' cannot close an object"},
	{"trailing comma in object", `{"a": 1,§}`, CodeSyntax, "", E, "trailing comma"},
	{"lone comma in array", `{"s": [§,]}`, CodeSyntax, "", E, ""},
	{"double comma in array", `{"s": [1,§,2]}`, CodeSyntax, "", E, ""},
	{"two trailing commas", `{"s": [1,§,]}`, CodeSyntax, "", E, ""},
	{"slash comment", "{\n  \"a\": 1, §// no\n}", CodeSyntax, "", E, ""},
	{"block comment", "{§/* no */}", CodeSyntax, "", E, ""},
	{"missing colon", `{"a" §1}`, CodeSyntax, "", E, "expected ':'"},
	{"missing comma", `{"a": 1 §"b": 2}`, CodeSyntax, "", E, "expected ',' or '}'"},
	{"unquoted key", `{§a: 1}`, CodeSyntax, "", E, "expected a string key"},
	{"bad escape", `{"a": "x§\q"}`, CodeSyntax, "", E, "invalid escape"},
	{"bad unicode escape", `{"a": "\u12§G4"}`, CodeSyntax, "", E, "hex digits"},
	{"control character", "{\"a\": \"x§\ty\"}", CodeSyntax, "", E, "control character"},
	{"invalid utf8", "{\"a\": \"x§\xff\"}", CodeSyntax, "", E, "UTF-8"},
	{"bad literal", `{"a": §tru }`, CodeSyntax, "", E, "expected true"},
	{"literal run-on", `{"a": §nullx}`, CodeSyntax, "", E, "expected null"},
	{"bad number", `{"a": -§x}`, CodeSyntax, "", E, "digit"},
	{"leading zero", `{"a": 0§1}`, CodeSyntax, "", E, "invalid number"},
	{"bad fraction", `{"a": 1.§}`, CodeSyntax, "", E, "digit after '.'"},
	{"bad exponent", `{"a": 1e§x}`, CodeSyntax, "", E, "exponent"},
	{"top-level array", `§[1]`, CodeSyntax, "", E, "must be a JSON object"},
	{"not json", "\n\n  §<html>", CodeSyntax, "", E, "must be a JSON object"},
	{"file name", `§/etc/passwd`, CodeSyntax, "", E, "must be a JSON object"},
	{"too deep", `{"a": ` + strings.Repeat("[", maxDepth-1) + `§[` + strings.Repeat("]", maxDepth) + `}`, CodeSyntax, "", E, "nesting deeper"},

	// Truncated input and trailing data.
	{"truncated object", "{\"a\": 1§", CodeTruncated, "", E, ""},
	{"truncated after key", "{\"a\"§", CodeTruncated, "", E, ""},
	{"truncated string", "{\"a\": \"abc§", CodeTruncated, "", E, "inside a string"},
	{"truncated array", "{\"s\": [1, # comment\n§", CodeTruncated, "", E, ""},
	{"truncated literal", "{\"a\": tr§", CodeTruncated, "", E, ""},
	{"empty input", "§", CodeTruncated, "", E, ""},
	{"only comments", "# nothing\n§", CodeTruncated, "", E, ""},
	{"trailing data", "{} §x", CodeTrailingData, "", E, ""},
	{"second object", "{}\n# fine\n§{}", CodeTrailingData, "", E, ""},
	{"unbalanced close", "{\"s\": []}§}", CodeTrailingData, "", E, ""},

	// Types and coercions.
	{"string expected", `{"release": §5}`, CodeType, "release", E, "expected a string, found number 5"},
	{"array expected", `{"s": §{}}`, CodeType, "s", E, "array of objects"},
	{"object element expected", `{"s": [§1]}`, CodeType, "s[0]", E, ""},
	{"streamtype object expected", `{"s": [{"x": §[]}]}`, CodeType, "s[0].x", E, ""},
	{"retry object expected", `{"retry": [{"r": §true}]}`, CodeType, "retry[0].r", E, ""},
	{"cert string expected", `{"certs": [{"c": §{}}]}`, CodeType, "certs[0].c", E, ""},
	{"bool string", st1(`"tls": §"true"`), CodeType, "s[0].x.tls", E, "expected true or false"},
	{"bool number", st1(`"tls": §2`), CodeType, "s[0].x.tls", E, ""},
	{"bool null", st1(`"tls": §null`), CodeType, "s[0].x.tls", E, ""},
	{"string given bool", st1(`"endpoint": §true`), CodeType, "s[0].x.endpoint", E, ""},
	{"string given null", st1(`"http_url": §null`), CodeType, "s[0].x.http_url", E, ""},
	{"integer given bool", st1(`"port": §true`), CodeType, "s[0].x.port", E, ""},
	{"integer given text", st1(`"port": §"https"`), CodeType, "s[0].x.port", E, ""},
	{"integer given float text", st1(`"port": §"443.0"`), CodeType, "s[0].x.port", E, ""},
	{"backoff not array", `{"retry": [{"r": {"backoff": §1000}}]}`, CodeType, "retry[0].r.backoff", E, ""},
	{"backoff element", `{"retry": [{"r": {"backoff": [1, §"x"]}}]}`, CodeType, "retry[0].r.backoff[1]", E, ""},
	{"metadata not array", st1(`"metadata": §{}`), CodeType, "s[0].x.metadata", E, ""},
	{"metadata mapping", st1(`"metadata": [{"a": §1}]`), CodeType, "s[0].x.metadata[0].a", E, ""},
	{"options value", st1(`"server": true, "port": 1, "options": [{"a": §1}]`), CodeType, "s[0].x.options[0].a", E, ""},
	{"stack not array shape A", `{"trust_stores": [{"name": "t", "stack": §"c"}]}`, CodeType, "trust_stores[0].stack", E, ""},
	{"stack not array shape B", `{"trust_stores": [{"t": §"c"}]}`, CodeType, "trust_stores[0].t", E, ""},
	{"quoted key path", `{"s": [{"my.st": {"port": §[]}}]}`, CodeType, `s[0]["my.st"].port`, E, ""},
	{"non-integer fraction", st1(`"port": §443.5`), CodeNonInteger, "s[0].x.port", E, "443.5"},
	{"non-integer exponent", st1(`"port": §1e3`), CodeNonInteger, "s[0].x.port", E, ""},
	{"non-integer zero fraction", `{"retry": [{"r": {"conceal": §1.0}}]}`, CodeNonInteger, "retry[0].r.conceal", E, ""},
	{"range port", st1(`"port": §70000`), CodeRange, "s[0].x.port", E, "0..65535"},
	{"range negative", st1(`"port": §-1`), CodeRange, "s[0].x.port", E, ""},
	{"range coerced string", st1(`"port": §"70000"`), CodeRange, "s[0].x.port", E, ""},
	{"range huge", st1(`"timeout_ms": §99999999999999999999999`), CodeRange, "s[0].x.timeout_ms", E, ""},
	{"range timeout", st1(`"timeout_ms": §4294967296`), CodeRange, "s[0].x.timeout_ms", E, ""},
	{"range jitter", `{"retry": [{"r": {"jitterpc": §101}}]}`, CodeRange, "retry[0].r.jitterpc", E, "0..100"},
	{"range backoff entry", `{"retry": [{"r": {"backoff": [§2147483648]}}]}`, CodeRange, "retry[0].r.backoff[0]", E, ""},
	{"range priority", st1(`"attr_priority": §8`), CodeRange, "s[0].x.attr_priority", E, ""},
	{"range client_cert", st1(`"client_cert": §255`), CodeRange, "s[0].x.client_cert", E, ""},
	{"range blob", `{"auth": [{"name": "a", "blob": §4}]}`, CodeRange, "auth[0].blob", E, "0..3"},
	{"range expect", st1(`"http_expect": §99`), CodeRange, "s[0].x.http_expect", E, ""},
	{"range qos", st1(`"protocol": "mqtt", "mqtt_qos": §3`), CodeRange, "s[0].x.mqtt_qos", E, ""},
	{"range will qos", st1(`"protocol": "mqtt", "mqtt_will_qos": §-1`), CodeRange, "s[0].x.mqtt_will_qos", E, ""},
	{"range resp map state", st1(`"http_resp_map": [{"404": §999}]`), CodeRange, `s[0].x.http_resp_map[0].404`, E, "1000..65535"},
	{"range min_outlier", `{"metrics": [{"name": "m", "min_outlier": §256}]}`, CodeRange, "metrics[0].min_outlier", E, ""},
	{"range schema negative", `{"schema-version": §-1}`, CodeRange, "schema-version", E, ""},
	{"format socks5", `{"via-socks5": §"proxy"}`, CodeFormat, "via-socks5", E, "host:port"},
	{"format socks5 port", st1(`"via-socks5": §"h:0"`), CodeFormat, "s[0].x.via-socks5", E, "1..65535"},
	{"format socks5 ipv6", st1(`"via-socks5": §"::1:1080"`), CodeFormat, "s[0].x.via-socks5", E, ""},
	{"format socks5 user", st1(`"via-socks5": §"@h:1"`), CodeFormat, "s[0].x.via-socks5", E, "user"},
	{"format protocol", st1(`"protocol": §"h1get"`), CodeFormat, "s[0].x.protocol", E, "unknown protocol"},
	{"format protocol case", st1(`"protocol": §"H1"`), CodeFormat, "s[0].x.protocol", E, ""},
	{"format resp map key", st1(`"http_resp_map": [{§"abc": 1000}]`), CodeFormat, `s[0].x.http_resp_map[0].abc`, E, "HTTP status"},
	{"format resp map status", st1(`"http_resp_map": [{§"600": 1000}]`), CodeFormat, `s[0].x.http_resp_map[0].600`, E, ""},
	{"coerced integer", withSections(`{"x": {"endpoint": "e", "http_method": "GET", "port": §"443"}}`), CodeCoerced, "s[0].x.port", W, "443"},
	{"coerced true", withSections(`{"x": {"endpoint": "e", "http_method": "GET", "tls": §1}}`), CodeCoerced, "s[0].x.tls", W, "lws would have read it as false"},
	{"coerced false", withSections(`{"x": {"endpoint": "e", "http_method": "GET", "tls": §0}}`), CodeCoerced, "s[0].x.tls", W, ""},

	// Unknown, deprecated and duplicate keys.
	{"unknown top key", `{§"relase": "x"}`, CodeUnknownKey, "relase", W, `did you mean "release"?`},
	{"unknown top key far", `{§"zzzzzzzz": {"nested": [1, 2]}}`, CodeUnknownKey, "zzzzzzzz", W, ""},
	{"unknown streamtype key", st1(`"endpoint": "e", "http_method": "GET", §"endpiont": "x"`), CodeUnknownKey, "s[0].x.endpiont", W, `did you mean "endpoint"?`},
	{"unknown key case", st1(`"endpoint": "e", "http_method": "GET", §"TLS": true`), CodeUnknownKey, "s[0].x.TLS", W, `did you mean "tls"?`},
	{"unknown key dash", st1(`"endpoint": "e", "http_method": "GET", §"nailed-up": true`), CodeUnknownKey, "s[0].x.nailed-up", W, `did you mean "nailed_up"?`},
	{"unknown retry key", `{"retry": [{"r": {§"backof": [1]}}]}`, CodeUnknownKey, "retry[0].r.backof", W, `did you mean "backoff"?`},
	{"unknown auth key", `{"auth": [{"name": "a", §"blobb": 1}]}`, CodeUnknownKey, "auth[0].blobb", W, `"blob"`},
	{"unknown metrics key", `{"metrics": [{"name": "m", §"report_all": 1}]}`, CodeUnknownKey, "metrics[0].report_all", W, ""},
	{"unknown trust store key", `{"certs": [{"c": "` + testCertB64 + `"}], "trust_stores": [{"name": "t", "stack": ["c"], §"stak": 1}]}`, CodeUnknownKey, "trust_stores[0].stak", W, `"stack"`},
	{"unknown auth type", `{"auth": [{"name": "a", "type": §"oauth"}]}`, CodeUnknownValue, "auth[0].type", W, "oauth"},
	{"plugins", st1(`"endpoint": "e", "http_method": "GET", §"plugins": [{"x": 1}]`), CodeDeprecatedKey, "s[0].x.plugins", W, ""},
	{"duplicate key", `{"release": "a", §"release": "b"}`, CodeDuplicateKey, "release", W, "line 1, column 2"},
	{"duplicate streamtype key", st1(`"endpoint": "a", "http_method": "GET", §"endpoint": "b"`), CodeDuplicateKey, "s[0].x.endpoint", W, ""},
	{"alias conflict", st1(`"endpoint": "a", "http_method": "GET", "http_mime_content_type": "a", §"http_multipart_content_type": "b"`), CodeDuplicateKey, "s[0].x.http_multipart_content_type", W, "same key"},
	{"duplicate status", st1(`"endpoint": "a", "http_method": "GET", "http_resp_map": [{"404": 1001}, {§"404": 1002}]`), CodeDuplicateKey, `s[0].x.http_resp_map[1].404`, W, "first mapping wins"},
	{"duplicate streamtype", `{"s": [{"x": {"endpoint": "a", "http_method": "GET"}}, {§"x": {"endpoint": "b", "http_method": "GET"}}]}`, CodeDuplicateName, "s[1].x", W, "replaces"},
	{"duplicate streamtype in one object", `{"s": [{"x": {"endpoint": "a", "http_method": "GET"}, §"x": {"endpoint": "b", "http_method": "GET"}}]}`, CodeDuplicateName, "s[0].x", W, ""},
	{"duplicate retry", `{"retry": [{"r": {}}, {§"r": {}}]}`, CodeDuplicateName, "retry[1].r", W, ""},
	{"duplicate cert", `{"certs": [{"c": "` + testCertB64 + `"}, {§"c": "` + testKeyB64 + `"}]}`, CodeDuplicateName, "certs[1].c", W, ""},
	{"duplicate trust store", `{"certs": [{"c": "` + testCertB64 + `"}], "trust_stores": [{"name": "t", "stack": ["c"]}, {§"t": ["c"]}]}`, CodeDuplicateName, "trust_stores[1].t", W, ""},
	{"duplicate stack entry", `{"certs": [{"c": "` + testCertB64 + `"}], "trust_stores": [{"t": ["c", §"c"]}]}`, CodeDuplicateName, "trust_stores[0].t[1]", W, "kept once"},
	{"duplicate auth", `{"auth": [{"name": "a"}, {"name": §"a"}]}`, CodeDuplicateName, "auth[1].name", W, ""},
	{"duplicate metrics", `{"metrics": [{"name": "m"}, {"name": §"m"}]}`, CodeDuplicateName, "metrics[1].name", W, ""},
	{"duplicate metadata", st1(`"endpoint": "a", "http_method": "GET", "metadata": [{"m": ""}, {§"m": "x:"}]`), CodeDuplicateName, "s[0].x.metadata[1].m", W, ""},
	{"duplicate option", st1(`"server": true, "port": 1, "options": [{"o": ""}, {§"o": "x"}]`), CodeDuplicateName, "s[0].x.options[1].o", W, ""},

	// Missing keys and names.
	{"missing endpoint", `{"s": [{§"x": {"http_method": "GET"}}]}`, CodeMissingKey, "s[0].x", E, "endpoint"},
	{"empty endpoint", st1(`"http_method": "GET", "endpoint": §""`), CodeMissingKey, "s[0].x.endpoint", E, ""},
	{"missing http_method", `{"s": [{§"x": {"endpoint": "e"}}]}`, CodeMissingKey, "s[0].x", W, "GET"},
	{"missing stack", `{"trust_stores": [§{"name": "t"}]}`, CodeMissingKey, "trust_stores[0]", E, "stack"},
	{"missing auth name", `{"auth": [§{"type": "sigv4"}]}`, CodeMissingKey, "auth[0]", W, "ignored"},
	{"missing metrics name", `{"metrics": [§{"report": "x"}]}`, CodeMissingKey, "metrics[0]", E, ""},
	{"missing server port", `{"s": [{§"x": {"server": true}}]}`, CodeMissingKey, "s[0].x", E, "port"},
	{"missing server cert", withSections(`{"x": {"server": true, "port": 1, §"tls": true, "server_key": "k"}}`), CodeMissingKey, "s[0].x.tls", E, "server_cert"},
	{"missing server key", withSections(`{"x": {"server": true, "port": 1, §"tls": true, "server_cert": "c"}}`), CodeMissingKey, "s[0].x.tls", E, "server_key"},
	{"empty streamtype name", `{"s": [{§"": {}}]}`, CodeEmptyName, "s[0][\"\"]", E, ""},
	{"empty retry name", `{"retry": [{§"": {}}]}`, CodeEmptyName, "retry[0][\"\"]", E, ""},
	{"empty cert name", `{"certs": [{§"": "AAAA"}]}`, CodeEmptyName, "certs[0][\"\"]", E, ""},
	{"empty trust store name", `{"trust_stores": [{"name": §"", "stack": ["c"]}]}`, CodeEmptyName, "trust_stores[0].name", E, ""},
	{"empty trust store name B", `{"trust_stores": [{§"": ["c"]}]}`, CodeEmptyName, "trust_stores[0][\"\"]", E, ""},
	{"empty stack entry", `{"trust_stores": [{"t": [§""]}]}`, CodeEmptyName, "trust_stores[0].t[0]", E, ""},
	{"empty auth name", `{"auth": [{"name": §""}]}`, CodeEmptyName, "auth[0].name", E, ""},
	{"empty auth streamtype", `{"auth": [{"name": "a", "streamtype": §""}]}`, CodeEmptyName, "auth[0].streamtype", E, ""},
	{"empty metrics name", `{"metrics": [{"name": §""}]}`, CodeEmptyName, "metrics[0].name", E, ""},
	{"empty retry ref", st1(`"endpoint": "e", "retry": §""`), CodeEmptyName, "s[0].x.retry", E, ""},
	{"empty metadata name", st1(`"endpoint": "e", "metadata": [{§"": ""}]`), CodeEmptyName, "s[0].x.metadata[0][\"\"]", E, ""},

	// References.
	{"unknown retry", withSections(`{"x": {"endpoint": "e", "retry": §"r"}}`), CodeUnknownRef, "s[0].x.retry", E, `no retry policy named "r"`},
	{"retry prefix", withSections(`{"x": {"endpoint": "e", "retry": §"r1x"}}`), CodeUnknownRef, "s[0].x.retry", E, `"r1x"`},
	{"unknown trust store", withSections(`{"x": {"endpoint": "e", "tls": true, "tls_trust_store": §"t"}}`), CodeUnknownRef, "s[0].x.tls_trust_store", E, `"t"`},
	{"unknown auth", withSections(`{"x": {"endpoint": "e", "use_auth": §"nope"}}`), CodeUnknownRef, "s[0].x.use_auth", E, `"nope"`},
	{"unknown rideshare", withSections(`{"x": {"endpoint": "e", "rideshare": §"y"}}`), CodeUnknownRef, "s[0].x.rideshare", E, `"y"`},
	{"unknown auth streamtype", `{"auth": [{"name": "a", "streamtype": §"refresh"}]}`, CodeUnknownRef, "auth[0].streamtype", E, `"refresh"`},
	{"unknown stack cert", `{"trust_stores": [{"name": "t", "stack": [§"missing"]}]}`, CodeUnknownRef, "trust_stores[0].stack[0]", E, `"missing"`},
	{"unknown server cert", withSections(`{"x": {"server": true, "port": 1, "tls": true, "server_cert": §"cc", "server_key": "k"}}`), CodeUnknownRef, "s[0].x.server_cert", E, `"cc"`},
	{"unknown listener", withSections(`{"x": {"server": true, "endpoint": §"!y"}}`), CodeUnknownRef, "s[0].x.endpoint", E, `"y"`},
	{"listener not a server", withSections(`{"x": {"server": true, "endpoint": §"!y"}, "y": {"endpoint": "e", "http_method": "GET"}}`), CodeUnknownRef, "s[0].x.endpoint", E, ""},
	{"wrong kind stack", `{"certs": [{"k": "` + testKeyB64 + `"}], "trust_stores": [{"t": [§"k"]}]}`, CodeWrongKind, "trust_stores[0].t[0]", E, "private key"},
	{"wrong kind server cert", withSections(`{"x": {"server": true, "port": 1, "tls": true, "server_cert": §"k", "server_key": "k"}}`), CodeWrongKind, "s[0].x.server_cert", E, ""},
	{"wrong kind server key", withSections(`{"x": {"server": true, "port": 1, "tls": true, "server_cert": "c", "server_key": §"c"}}`), CodeWrongKind, "s[0].x.server_key", E, ""},

	// Certs and trust stores.
	{"bad base64", `{"certs": [{"c": §"!!!!"}]}`, CodeBadCert, "certs[0].c", E, `"c" is not valid base64`},
	{"not der", `{"certs": [{"c": §"AAAA"}]}`, CodeBadCert, "certs[0].c", E, `"c" is neither`},
	{"empty cert", `{"certs": [{"c": §""}]}`, CodeBadCert, "certs[0].c", E, "empty"},
	{"empty stack A", `{"trust_stores": [{"name": "t", "stack": §[]}]}`, CodeEmptyStack, "trust_stores[0].stack", E, `"t"`},
	{"empty stack B", `{"trust_stores": [{"t": §[]}]}`, CodeEmptyStack, "trust_stores[0].t", E, ""},
	{"too many backoff", `{"retry": [{"r": {"backoff": §[` + strings.Repeat("1,", 64) + `1]}}]}`, CodeTooMany, "retry[0].r.backoff", E, "65 entries"},
	{"schema version", "{\n  \"schema-version\": §2\n}", CodeSchemaVersion, "schema-version", E, "policy needs parser schema 2, this parser supports 1"},
	{"schema version string", `{"schema-version": §"3"}`, CodeSchemaVersion, "schema-version", E, "schema 3"},

	// Substitutions.
	{"undeclared in url", st1(`"endpoint": "e", "http_url": §"a/${x}"`), CodeUndeclaredMetadata, "s[0].x.http_url", E, `"x"`},
	{"undeclared in endpoint", st1(`"endpoint": §"${host}"`), CodeUndeclaredMetadata, "s[0].x.endpoint", E, `"host"`},
	{"undeclared in topic", st1(`"protocol": "mqtt", "endpoint": "b", "mqtt_topic": §"${d}/t"`), CodeUndeclaredMetadata, "s[0].x.mqtt_topic", E, ""},
	{"undeclared in will", st1(`"protocol": "mqtt", "endpoint": "b", "mqtt_topic": "t", "mqtt_will_message": §"${d}"`), CodeUndeclaredMetadata, "s[0].x.mqtt_will_message", E, ""},
	{"undeclared case", st1(`"endpoint": "e", "metadata": [{"X": ""}], "http_url": §"${x}"`), CodeUndeclaredMetadata, "s[0].x.http_url", E, ""},
	{"undeclared aws_region", withSections(`{"x": {"endpoint": "e", "use_auth": "sig", "aws_region": §"reg"}}`), CodeUndeclaredMetadata, "s[0].x.aws_region", E, ""},
	{"unterminated", st1(`"endpoint": "e", "metadata": [{"x": ""}], "http_url": §"a/${x"`), CodeBadSubstitution, "s[0].x.http_url", E, "closing"},
	{"empty substitution", st1(`"endpoint": "e", "http_url": §"a/${}"`), CodeBadSubstitution, "s[0].x.http_url", E, "empty"},
	{"no substitution", withSections(`{"x": {"endpoint": "e", "http_method": §"${m}"}}`), CodeNoSubstitution, "s[0].x.http_method", W, "literally"},
	{"no substitution header", withSections(`{"x": {"endpoint": "e", "http_method": "GET", "http_auth_header": §"${h}:"}}`), CodeNoSubstitution, "s[0].x.http_auth_header", W, ""},

	// Applicability.
	{"mqtt key on h1", withSections(`{"x": {"endpoint": "e", "http_method": "GET", §"mqtt_qos": 1}}`), CodeNotApplicable, "s[0].x.mqtt_qos", W, "h1 client"},
	{"http key on mqtt", withSections(`{"x": {"protocol": "mqtt", "endpoint": "b", "mqtt_topic": "t", §"http_url": "u"}}`), CodeNotApplicable, "s[0].x.http_url", W, ""},
	{"mqtt_ws_path without slash", withSections(`{"x": {"protocol": "mqtt", "endpoint": "b", "mqtt_topic": "t", "mqtt_ws_path": §"mqtt"}}`), CodeFormat, "s[0].x.mqtt_ws_path", E, "must start with"},
	{"mqtt_ws_path on h1", withSections(`{"x": {"endpoint": "e", "http_method": "GET", §"mqtt_ws_path": "/mqtt"}}`), CodeNotApplicable, "s[0].x.mqtt_ws_path", W, "h1 client"},
	{"sigv4 on plain mqtt", withSections(`{"x": {"protocol": "mqtt", "endpoint": "b", "mqtt_topic": "t", §"use_auth": "sig"}}`), CodeNotApplicable, "s[0].x.use_auth", W, "sigv4"},
	{"http_method on ws", withSections(`{"x": {"protocol": "ws", "endpoint": "e", §"http_method": "POST"}}`), CodeNotApplicable, "s[0].x.http_method", W, "always a GET"},
	{"long_poll on h1", withSections(`{"x": {"endpoint": "e", "http_method": "GET", §"long_poll": true}}`), CodeNotApplicable, "s[0].x.long_poll", W, ""},
	{"protocol last", withSections(`{"x": {§"mqtt_topic": "t", "endpoint": "e", "http_method": "GET", "protocol": "h2"}}`), CodeNotApplicable, "s[0].x.mqtt_topic", W, "h2 client"},
	{"retry on server", withSections(`{"x": {"server": true, "port": 1, §"retry": "r1"}}`), CodeNotApplicable, "s[0].x.retry", W, "server"},
	{"server_cert on client", withSections(`{"x": {"endpoint": "e", "http_method": "GET", "tls": true, §"server_cert": "c"}}`), CodeNotApplicable, "s[0].x.server_cert", W, ""},
	{"trust store without tls", withSections(`{"x": {"endpoint": "e", "http_method": "GET", §"tls_trust_store": "ts"}}`), CodeNotApplicable, "s[0].x.tls_trust_store", W, "without TLS"},
	{"client_cert without tls", withSections(`{"x": {"endpoint": "e", "http_method": "GET", §"client_cert": 0}}`), CodeNotApplicable, "s[0].x.client_cert", W, ""},
	{"svalidping without hup", `{"retry": [{"r": {§"svalidping": 5}}]}`, CodeNotApplicable, "retry[0].r.svalidping", W, "svalidhup"},
	{"header mapping on mqtt", withSections(`{"x": {"protocol": "mqtt", "endpoint": "b", "mqtt_topic": "t", "metadata": [{"a": §"x-a:"}]}}`), CodeNotApplicable, "s[0].x.metadata[0].a", W, ""},
	{"mqtt without topics", withSections(`{§"x": {"protocol": "mqtt", "endpoint": "b"}}`), CodeNotApplicable, "s[0].x", W, "neither"},
	{"preamble without header", withSections(`{"x": {"endpoint": "e", "http_method": "GET", §"http_auth_preamble": "B "}}`), CodeNotApplicable, "s[0].x.http_auth_preamble", W, "http_auth_header"},
	{"aws_region without sigv4", withSections(`{"x": {"endpoint": "e", "http_method": "GET", "use_auth": "tok", "metadata": [{"r": ""}], §"aws_region": "r"}}`), CodeNotApplicable, "s[0].x.aws_region", W, "sigv4"},
	{"sigv4 on mqtt", withSections(`{"x": {"protocol": "mqtt", "endpoint": "b", "mqtt_topic": "t", §"use_auth": "sig"}}`), CodeNotApplicable, "s[0].x.use_auth", W, ""},
	{"ws_binary on plain server", withSections(`{"x": {"server": true, "port": 1, §"ws_binary": true}}`), CodeNotApplicable, "s[0].x.ws_binary", W, "ws_subprotocol"},

	// Conflicts and cross-field rules.
	{"ws server", withSections(`{"x": {"server": true, "port": 1, "protocol": §"ws"}}`), CodeConflict, "s[0].x.protocol", E, "ws_subprotocol"},
	{"mqtt server", withSections(`{"x": {"server": true, "port": 1, "protocol": §"mqtt"}}`), CodeConflict, "s[0].x.protocol", E, ""},
	{"cert without tls", withSections(`{"x": {"server": true, "port": 1, "server_cert": §"c", "server_key": "k"}}`), CodeConflict, "s[0].x.server_cert", E, "tls"},
	{"h2 server without tls", withSections(`{§"x": {"server": true, "port": 1, "protocol": "h2"}}`), CodeConflict, "s[0].x", W, "HTTP/1.1"},
	{"h3 without tls", withSections(`{"x": {"protocol": "h3", "endpoint": "e", "http_method": "GET", §"tls": false}}`), CodeConflict, "s[0].x.tls", W, "QUIC"},
	{"h3 tls absent", withSections(`{§"x": {"protocol": "h3", "endpoint": "e", "http_method": "GET"}}`), CodeConflict, "s[0].x", W, "QUIC"},
	{"rideshare to ws", withSections(`{"x": {"endpoint": "e", "http_method": "GET", "rideshare": §"y"}, "y": {"protocol": "ws", "endpoint": "e"}}`), CodeConflict, "s[0].x.rideshare", E, "h1, h2 or h3"},
	{"rxflow order", withSections(`{"x": {"endpoint": "e", "proxy_buflen_rxflow_on_above": §100, "proxy_buflen_rxflow_off_below": 200}}`), CodeConflict, "s[0].x.proxy_buflen_rxflow_on_above", E, ""},
	{"rxflow above buflen", withSections(`{"x": {"endpoint": "e", "http_method": "GET", "proxy_buflen": 1000, §"proxy_buflen_rxflow_on_above": 2000}}`), CodeConflict, "s[0].x.proxy_buflen_rxflow_on_above", W, ""},
	{"listener self", withSections(`{"x": {"server": true, "endpoint": §"!x"}}`), CodeConflict, "s[0].x.endpoint", E, "itself"},
	{"rideshare cycle", withSections(`{"x": {"endpoint": "e", "http_method": "GET", "rideshare": §"y"}, "y": {"endpoint": "e", "http_method": "GET", "rideshare": "x"}}`), CodeRideshareCycle, "s[0].x.rideshare", E, "x -> y"},
	{"rideshare self", withSections(`{"x": {"endpoint": "e", "http_method": "GET", "rideshare": §"x"}}`), CodeRideshareCycle, "s[0].x.rideshare", E, ""},

	// Proxy limits.
	{"long streamtype name", withSections(`{§"` + strings.Repeat("n", 32) + `": {"endpoint": "e", "http_method": "GET"}}`), CodeProxyLimit, "s[0]." + strings.Repeat("n", 32), W, "31 bytes"},
	{"long metadata name", withSections(`{"x": {"endpoint": "e", "http_method": "GET", "metadata": [{§"` + strings.Repeat("m", 31) + `": ""}]}}`), CodeProxyLimit, "s[0].x.metadata[0]." + strings.Repeat("m", 31), W, "30 bytes"},
	{"long rideshare chain", withSections(`{"a": {"endpoint": "e", "http_method": "GET", "rideshare": §"b"}, "b": {"endpoint": "e", "http_method": "GET", "rideshare": "c"},
	  "c": {"endpoint": "e", "http_method": "GET", "rideshare": "d"}, "d": {"endpoint": "e", "http_method": "GET"}}`), CodeProxyLimit, "s[0].a.rideshare", W, "a,b,c,d"},
}

func init() {
	for _, c := range diagCases {
		text := strings.Replace(c.text, "§", "", 1)
		pol(text)
	}
}

func TestDiagnostics(t *testing.T) {
	for _, c := range diagCases {
		t.Run(c.name, func(t *testing.T) {
			text, line, col := marked(t, c.text)
			p, diags, err := Parse([]byte(text), Options{})
			var found *Diagnostic
			for i := range diags {
				if diags[i].Code == c.code && diags[i].Path == c.path {
					found = &diags[i]
					break
				}
			}
			if found == nil {
				t.Fatalf("no %s diagnostic at path %q; got:%s", c.code, c.path, diagsText(diags))
			}
			if found.Line != line || found.Col != col {
				t.Errorf("%s at %d:%d, want %d:%d", found, found.Line, found.Col, line, col)
			}
			if found.Severity != c.sev {
				t.Errorf("severity %s, want %s", found.Severity, c.sev)
			}
			if !strings.Contains(found.Msg, c.msg) {
				t.Errorf("message %q does not contain %q", found.Msg, c.msg)
			}
			hasErr := false
			for _, d := range diags {
				hasErr = hasErr || d.Severity == SeverityError
			}
			if hasErr != (err != nil) || (err != nil) != (p == nil) {
				t.Errorf("error diagnostics %v, err %v, policy %v", hasErr, err, p != nil)
			}
			if c.sev == SeverityWarning {
				_, sd, serr := Parse([]byte(text), Options{Strict: true})
				if serr == nil {
					t.Error("strict mode accepted a warning")
				}
				for _, d := range sd {
					if d.Severity != SeverityError {
						t.Errorf("strict mode left a warning: %s", d)
					}
				}
			}
		})
	}
}

func TestErrorValues(t *testing.T) {
	_, diags, err := Parse([]byte(st1(`"port": 70000, "tls": "yes", "endpoint": "e"`)), Options{})
	if len(withCode(diags, CodeRange)) != 1 || len(withCode(diags, CodeType)) != 1 {
		t.Fatalf("parsing did not continue after the first error:%s", diagsText(diags))
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("errors.Is(err, ErrInvalid) = false for %v", err)
	}
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 2 {
		t.Fatalf("err = %#v", err)
	}
	var pe *Error
	if !errors.As(err, &pe) || pe.Path != "s[0].x.port" || pe.Line != 1 || pe.Col != 23 || pe.Code != CodeRange {
		t.Errorf("first *Error = %+v", pe)
	}
	if !strings.Contains(err.Error(), "1:23: error: s[0].x.port: integer 70000 is out of range 0..65535 [range]") {
		t.Errorf("Error() = %q", err.Error())
	}
	_, _, err = Parse([]byte("{"), Options{})
	if !errors.As(err, &pe) || pe.Code != CodeTruncated || !errors.Is(err, ErrInvalid) {
		t.Errorf("syntax error = %#v", err)
	}
	if s := (Diagnostic{Severity: SeverityWarning, Code: CodeUnknownKey, Line: 2, Col: 3, Msg: "m"}).String(); s != "2:3: warning: m [unknown-key]" {
		t.Errorf("String() = %q", s)
	}
}

func TestLaterDuplicateWins(t *testing.T) {
	p, diags := mustParse(t, pol(`{"retry": [{"r": {"conceal": 1}}, {"q": {}}, {"r": {"conceal": 2}}],
		"s": [{"x": {"endpoint": "a", "http_method": "GET", "retry": "r"}, "y": {"endpoint": "y", "http_method": "GET"}},
		      {"x": {"endpoint": "b", "http_method": "PUT"}}]}`), Options{})
	if len(withCode(diags, CodeDuplicateName)) != 2 {
		t.Errorf("diagnostics:%s", diagsText(diags))
	}
	if len(p.Retry) != 2 || p.Retry[0].Name != "r" || p.Retry[0].Conceal != 2 {
		t.Errorf("retry = %+v", p.Retry)
	}
	if len(p.Streamtypes) != 2 || p.Streamtypes[0].Name != "x" || p.Streamtypes[0].Endpoint != "b" || p.Streamtypes[0].Retry != nil {
		t.Errorf("streamtypes = %+v", p.Streamtypes[0])
	}
	// A repeated top-level section appends.
	p, diags = mustParse(t, pol(`{"s": [{"a": {"endpoint": "e", "http_method": "GET"}}], "s": [{"b": {"endpoint": "e", "http_method": "GET"}}]}`), Options{})
	if len(p.Streamtypes) != 2 || len(withCode(diags, CodeDuplicateKey)) != 1 {
		t.Errorf("appended sections: %d streamtypes%s", len(p.Streamtypes), diagsText(diags))
	}
	// A repeated key inside a streamtype: the later value wins.
	p, _ = mustParse(t, st1(`"endpoint": "a", "http_method": "GET", "tls": true, "tls": false, "endpoint": "b"`), Options{})
	if st := p.Streamtypes[0]; st.TLS || st.Endpoint != "b" {
		t.Errorf("later value did not win: %+v", st)
	}
}

// TestCertEncodings covers PKCS#1 RSA, SEC1 EC and PKCS#8 keys, unpadded
// base64, and key-mismatch.
func TestCertEncodings(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sec1, _ := x509.MarshalECPrivateKey(ec)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(ec)
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := x509.MarshalPKCS1PrivateKey(rk)
	b64 := base64.RawStdEncoding.EncodeToString
	p, _ := mustParse(t, `{"certs": [{"sec1": "`+b64(sec1)+`", "p8": "`+b64(pkcs8)+`", "p1": "`+b64(pkcs1)+`"}]}`, Options{Strict: true})
	for _, c := range p.Certs {
		if c.Kind != KindPrivateKey || c.PrivateKey == nil {
			t.Errorf("%s = %+v", c.Name, c)
		}
	}
	if _, ok := p.Certs[2].PrivateKey.(*rsa.PrivateKey); !ok {
		t.Errorf("p1 key is %T", p.Certs[2].PrivateKey)
	}

	text, line, col := marked(t, `{"certs": [{"c": "`+testCertB64+`", "other": "`+b64(pkcs8)+`"}],
  "s": [{"srv": {"server": true, "port": 1, "tls": true, "server_cert": "c", "server_key": §"other"}}]}`)
	_, diags, err := Parse([]byte(text), Options{})
	got := withCode(diags, CodeKeyMismatch)
	if err == nil || len(got) != 1 || got[0].Line != line || got[0].Col != col || got[0].Path != "s[0].srv.server_key" {
		t.Errorf("key mismatch:%s", diagsText(diags))
	}
}

func TestLongStrings(t *testing.T) {
	long := strings.Repeat("a", 100000)
	p, _ := mustParse(t, pol(st1(`"endpoint": "`+long+`", "http_method": "GET", "metadata": [{"`+long[:300]+`": "x-`+long[:1000]+`:"}]`)), Options{})
	st := p.Streamtypes[0]
	if st.Endpoint != long || st.Metadata[0].Name != long[:300] || len(st.Metadata) != 1 || st.Metadata[0].Header != "x-"+long[:1000] {
		t.Error("long strings not kept whole")
	}
	p, _ = mustParse(t, pol(`{"release": "caf\u00e9 \ud83d\ude00 \"q\" \\ \/ \b\f\n\r\t \u0041", "product": "ünï"}`), Options{Strict: true})
	if p.Release != "café 😀 \"q\" \\ / \b\f\n\r\t A" || p.Product != "ünï" {
		t.Errorf("escapes: %q %q", p.Release, p.Product)
	}
}

func TestLenientSyntax(t *testing.T) {
	src := pol(`# leading comment
	{ # after brace
	  "retry": [ # in array
	    {"r": {"backoff": [1, 2, 3,], "conceal": 1}}, # trailing comma below
	  ],
	  "s": [{"x": {"endpoint": "a#b", # '#' inside a string is text
	               "http_method": "GET",
	               "metadata": [{"m": ""},
	                            # comment before the trailing comma
	                            ,
	                            ]}}]
	} # trailing comment`)
	// The ",\n ... ," above is two commas: a syntax error. Fix it up to one.
	src = strings.Replace(src, "{\"m\": \"\"},\n", "{\"m\": \"\"}\n", 1)
	p, diags := mustParse(t, pol(src), Options{Strict: true})
	if len(diags) != 0 {
		t.Fatalf("diagnostics:%s", diagsText(diags))
	}
	if st := p.Streamtypes[0]; st.Endpoint != "a#b" || len(st.Metadata) != 1 || len(p.Retry[0].Backoff) != 3 {
		t.Errorf("parsed: %+v", st)
	}
	for _, ok := range []string{`{"s": [{"a": {}},]}`, "{\"x\": [1 ,\n# c\n ]}", "\r\n{\r\n}\r\n"} {
		if _, diags, _ := Parse([]byte(pol(ok)), Options{}); len(withCode(diags, CodeSyntax)) != 0 {
			t.Errorf("%q: %s", ok, diagsText(diags))
		}
	}
}

func TestParseFileMissing(t *testing.T) {
	if _, _, err := ParseFile("testdata/does-not-exist.json", Options{}); err == nil {
		t.Error("ParseFile of a missing file succeeded")
	}
}

func TestUnknownRefHints(t *testing.T) {
	d := expectCode(t, withSections(`{"x": {"endpoint": "e", "http_method": "GET", "retry": "r"}}`), CodeUnknownRef)
	if !strings.Contains(d.Msg, `did you mean "r1"? (names match exactly; lws would have matched it by prefix)`) {
		t.Error(d.Msg)
	}
	d = expectCode(t, withSections(`{"x": {"endpoint": "e", "http_method": "GET", "use_auth": "sgi"}}`), CodeUnknownRef)
	if !strings.Contains(d.Msg, `did you mean "sig"?`) {
		t.Error(d.Msg)
	}
	// A certs entry that failed to decode is reported once, where it is
	// defined, not again at every reference.
	_, diags, _ := Parse([]byte(pol(`{"certs": [{"c": "AAAA"}], "trust_stores": [{"t": ["c"]}],
		"s": [{"srv": {"server": true, "port": 1, "tls": true, "server_cert": "c", "server_key": "c"}}]}`)), Options{})
	if len(withCode(diags, CodeBadCert)) != 1 || len(withCode(diags, CodeUnknownRef)) != 0 {
		t.Errorf("diagnostics:%s", diagsText(diags))
	}
}

func TestPresenceSurvivesEncoding(t *testing.T) {
	// An empty http_method is the GET default; a server's port 0 (an
	// ephemeral port) is kept through MarshalJSON and overlays.
	p, diags := mustParse(t, pol(`{"s": [{"x": {"endpoint": "e", "http_method": ""}, "srv": {"server": true, "port": 0}}]}`), Options{})
	if p.Streamtype("x").HTTPMethod != "GET" || len(withCode(diags, CodeMissingKey)) != 1 || diags[0].Path != "s[0].x.http_method" {
		t.Errorf("diagnostics:%s", diagsText(diags))
	}
	p2, _, err := ApplyOverlay(p, []byte(`{}`), Options{})
	if err != nil || !Equal(p, p2) {
		t.Errorf("overlay: %v %s", err, Diff(p, p2))
	}
}
