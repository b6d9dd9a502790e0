package transport

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/securestreams/ss/policy"
)

func TestEscapeURLValue(t *testing.T) {
	for in, want := range map[string]string{
		"":                   "",
		"AZaz09-._~":         "AZaz09-._~",
		"a b/c?d#e&f=g%h":    "a%20b%2Fc%3Fd%23e%26f%3Dg%25h",
		"\r\n\x00\x7f\xff":   "%0D%0A%00%7F%FF",
		"ü":                  "%C3%BC",
		"x HTTP/1.1\r\nX: 1": "x%20HTTP%2F1.1%0D%0AX%3A%201",
	} {
		if got := EscapeURLValue(in); got != want {
			t.Errorf("EscapeURLValue(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestChecks(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want string // "" for no error, else a fragment of the message
	}{
		{"token ok", CheckHeaderName("X-Trace_1"), ""},
		{"token colon", CheckHeaderName("x:y"), `':' at byte 1`},
		{"token empty", CheckHeaderName(""), "empty"},
		{"token space", CheckMethod("GE T"), "space (0x20) at byte 2"},
		{"value tab", CheckHeaderValue("h", "a\tb \xff"), ""},
		{"value CR", CheckHeaderValue("h", "a\rb"), `header "h": CR (0x0d) at byte 1`},
		{"value LF", CheckHeaderValue("h", "\n"), "LF (0x0a) at byte 0"},
		{"value NUL", CheckHeaderValue("h", "a\x00"), "NUL (0x00) at byte 1"},
		{"value DEL", CheckHeaderValue("h", "\x7f"), "DEL (0x7f)"},
		{"target ok", CheckRequestTarget("/a/b?c=%20&d"), ""},
		{"target no slash", CheckRequestTarget("a"), "does not start with '/'"},
		{"target hash", CheckRequestTarget("/a#b"), "'#' at byte 2"},
		{"target non-ASCII", CheckRequestTarget("/\xc3\xbc"), "non-ASCII byte 0xc3"},
		{"host ok", CheckHost("fe80::1%eth0"), ""},
		{"host at", CheckHost("a@b"), "'@' at byte 1"},
		{"host slash", CheckHost("a/b"), "'/' at byte 1"},
		{"pre ok", CheckPreEncoded("a%2Fb/c?d=e&f"), ""},
		{"pre short escape", CheckPreEncoded("a%2"), "does not start a %XX escape"},
		{"pre space", CheckPreEncoded("a b"), "space"},
		{"utf8 ok", CheckUTF8Text("a/ü", "topic", 10), ""},
		{"utf8 bad", CheckUTF8Text("a\xff", "topic", 10), "invalid UTF-8 at byte 1"},
		{"utf8 NUL", CheckUTF8Text("a\x00", "topic", 10), "NUL (0x00) at byte 1"},
		{"utf8 long", CheckUTF8Text("abc", "topic", 2), "3 bytes, the limit is 2"},
	} {
		switch {
		case c.want == "" && c.err != nil:
			t.Errorf("%s: %v, want no error", c.name, c.err)
		case c.want != "" && (c.err == nil || !strings.Contains(c.err.Error(), c.want) || !errors.Is(c.err, ErrWireValue)):
			t.Errorf("%s: %v, want an ErrWireValue containing %q", c.name, c.err, c.want)
		}
	}
}

// TestResolveEndpointEncoding: values substituted into an endpoint path are
// encoded, into its authority checked; a host with a bad byte is refused.
func TestResolveEndpointEncoding(t *testing.T) {
	parse := func(js string) *policy.Streamtype {
		p, diags, err := policy.Parse([]byte(`{"s": [{"x": {`+js+`}}]}`), policy.Options{})
		if err != nil {
			t.Fatalf("%v %v", err, diags)
		}
		return p.Streamtype("x")
	}
	st := parse(`"endpoint": "https://${h}/v/${p}", "http_method": "GET", "metadata": [{"h": "", "p": ""}]`)
	a := &Attempt{Type: st, Metadata: []MetadataValue{{Value: "ex.test", Set: true}, {Value: "a/b c", Set: true}}}
	ep, err := ResolveEndpoint(a)
	if err != nil {
		t.Fatal(err)
	}
	if ep.Host != "ex.test" || ep.Path != "/v/a%2Fb%20c" {
		t.Fatalf("host %q path %q", ep.Host, ep.Path)
	}
	a.Metadata[0].Value = "evil.test/x?"
	if _, err := ResolveEndpoint(a); err == nil || !errors.Is(err, ErrWireValue) || !strings.Contains(err.Error(), `metadata "h"`) {
		t.Fatalf("authority with '/': err = %v", err)
	}
	if err := CheckURLItem(st, 0, "evil.test@x"); err == nil || !strings.Contains(err.Error(), "'@'") {
		t.Fatalf("CheckURLItem authority '@': %v", err)
	}
	if err := CheckURLItem(st, 1, "any thing\r\n"); err != nil {
		t.Fatalf("CheckURLItem path value (encoded when sent): %v", err)
	}
	st = parse(`"endpoint": "${h}", "port": 80, "http_method": "GET", "metadata": [{"h": ""}]`)
	a = &Attempt{Type: st, Metadata: []MetadataValue{{Value: "a b", Set: true}}}
	if _, err := ResolveEndpoint(a); err == nil || !strings.Contains(err.Error(), "space") {
		t.Fatalf("endpoint with a space: err = %v", err)
	}
	a.Metadata[0].Value = "a!b"
	if _, err := ResolveEndpoint(a); err == nil || !strings.Contains(err.Error(), "host") {
		t.Fatalf("host with '!': err = %v", err)
	}
}

// FuzzEscapeURLValue: whatever a value holds, its encoding is valid
// pre-encoded URI text, a valid request target after "/", has no byte a
// structure could be read from ('/', '?', '#', '&', '=') and decodes back to
// the value; header checks refuse exactly the control characters.
func FuzzEscapeURLValue(f *testing.F) {
	for _, s := range []string{"", "a b", "x HTTP/1.1\r\nX-Injected: 1\r\n\r\nGET /", "\x00\xff%zz", "ü/€?#&="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		e := EscapeURLValue(v)
		if err := CheckPreEncoded(e); err != nil {
			t.Fatalf("EscapeURLValue(%q) = %q: %v", v, e, err)
		}
		if err := CheckRequestTarget("/" + e); err != nil {
			t.Fatalf("EscapeURLValue(%q) = %q: %v", v, e, err)
		}
		if strings.ContainsAny(e, "/?#&=") {
			t.Fatalf("EscapeURLValue(%q) = %q keeps a delimiter", v, e)
		}
		if d, err := url.PathUnescape(e); err != nil || d != v {
			t.Fatalf("EscapeURLValue(%q) = %q decodes to %q, %v", v, e, d, err)
		}
		ctl := strings.IndexFunc(v, func(r rune) bool { return (r < 0x20 && r != '\t') || r == 0x7f }) >= 0
		if err := CheckHeaderValue("h", v); (err != nil) != ctl {
			t.Fatalf("CheckHeaderValue(%q) = %v", v, err)
		}
	})
}
