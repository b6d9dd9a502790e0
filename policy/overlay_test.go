package policy

import (
	"errors"
	"strings"
	"testing"
)

func exampleBase(t *testing.T) *Policy {
	t.Helper()
	p, _ := mustParseNoEffect(t, readTestdata(t, "example.json"))
	return p
}

func mustOverlay(t *testing.T, base *Policy, frag string) (*Policy, []Diagnostic) {
	t.Helper()
	p, diags, err := ApplyOverlay(base, []byte(pol(frag)), Options{})
	if err != nil {
		t.Fatalf("overlay failed: %v%s", err, diagsText(diags))
	}
	return p, diags
}

func TestOverlaySpecExample(t *testing.T) {
	base := exampleBase(t)
	fresh := exampleBase(t)
	p, diags := mustOverlay(t, base, `{ "s": [ { "captive_portal_detect": {
      "endpoint": "127.0.0.1", "port": 1, "http_url": "generate_204" } } ] }`)
	if len(diags) != 0 {
		t.Errorf("diagnostics:%s", diagsText(diags))
	}
	cpd := p.Streamtype("captive_portal_detect")
	if cpd.Endpoint != "127.0.0.1" || cpd.Port != 1 || cpd.HTTPURL != "generate_204" {
		t.Errorf("patched keys: %+v", cpd)
	}
	if cpd.HTTPExpect != 204 || !cpd.HTTPFailRedirect || cpd.TimeoutMS != 3000 || !cpd.Opportunistic || cpd.HTTPMethod != "GET" {
		t.Errorf("unpatched keys lost: %+v", cpd)
	}
	if !Equal(base, fresh) {
		t.Errorf("base modified at %s", Diff(base, fresh))
	}
	if base.Streamtype("captive_portal_detect").Port != 8080 || p == base || cpd == base.Streamtype("captive_portal_detect") {
		t.Error("overlay shares or modifies the base")
	}
	if len(p.Streamtypes) != len(base.Streamtypes) || p.Streamtypes[len(p.Streamtypes)-1].Name != "captive_portal_detect" {
		t.Error("streamtype order changed")
	}
	// Untouched streamtypes are equal but not the same objects.
	if d := Diff(&Policy{Streamtypes: []*Streamtype{p.Streamtype("api_get")}}, &Policy{Streamtypes: []*Streamtype{base.Streamtype("api_get")}}); d != "" {
		t.Errorf("api_get changed at %s", d)
	}
}

func TestOverlayEmptyIsIdentity(t *testing.T) {
	base := exampleBase(t)
	p, diags := mustOverlay(t, base, `{}`)
	if len(diags) != 0 {
		t.Errorf("diagnostics:%s", diagsText(diags))
	}
	if d := Diff(base, p); d != "" {
		t.Errorf("empty overlay changed the policy at %s", d)
	}
	// Every valid corpus policy survives the encode/re-parse of an overlay.
	corpusMu.Lock()
	texts := append([]string(nil), corpus...)
	corpusMu.Unlock()
	n := 0
	for _, s := range texts {
		b, _, err := Parse([]byte(s), Options{})
		if err != nil {
			continue
		}
		n++
		p, diags, err := ApplyOverlay(b, []byte(`{"schema-version": 1}`), Options{})
		if err != nil {
			t.Fatalf("%v%s\npolicy: %s", err, diagsText(diags), s)
		}
		if d := Diff(b, p); d != "" {
			t.Fatalf("overlay round trip differs at %s\npolicy: %s", d, s)
		}
	}
	if n < 50 {
		t.Errorf("only %d valid corpus policies", n)
	}
}

func TestOverlayPatching(t *testing.T) {
	base := exampleBase(t)

	// Booleans can be cleared; references resolve against the base.
	p, diags := mustOverlay(t, base, `{"s": [{"api_get": {"allow_redirects": false, "retry": "fast", "http_resp_map": [{"500": 2000}]}}]}`)
	api := p.Streamtype("api_get")
	if api.AllowRedirects || api.Retry != p.Retry[2] || api.Retry.Name != "fast" || len(api.HTTPRespMap) != 1 || api.HTTPRespMap[0] != (RespMapEntry{500, 2000}) {
		t.Errorf("api_get = %+v%s", api, diagsText(diags))
	}
	if !base.Streamtype("api_get").AllowRedirects {
		t.Error("base changed")
	}

	// The README alias replaces the canonical key.
	p, _ = mustOverlay(t, base, `{"s": [{"upload_meta": {"http_multipart_content_type": "text/csv"}}]}`)
	if got := p.Streamtype("upload_meta").HTTPMimeContentType; got != "text/csv" {
		t.Errorf("alias patch = %q", got)
	}

	// New streamtypes are added at the end, with references into the base
	// and to other new streamtypes.
	p, _ = mustOverlay(t, base, `{"s": [{"extra": {"endpoint": "e.test", "http_method": "GET", "retry": "default", "tls": true,
		"tls_trust_store": "example_test", "rideshare": "extra2", "use_auth": "device_token"},
		"extra2": {"endpoint": "e.test", "http_method": "POST"}}]}`)
	n := len(p.Streamtypes)
	if n != len(base.Streamtypes)+2 || p.Streamtypes[n-2].Name != "extra" || p.Streamtypes[n-1].Name != "extra2" {
		t.Fatalf("new streamtypes not appended: %d", n)
	}
	ex := p.Streamtype("extra")
	if ex.Retry != p.Retry[0] || ex.TrustStore != p.TrustStores[0] || ex.Rideshare != p.Streamtype("extra2") || ex.UseAuth != p.Auth[1] {
		t.Errorf("extra references: %+v", ex)
	}
	if p.Auth[1].Streamtype != p.Streamtype("token_refresh") {
		t.Error("auth streamtype not re-resolved")
	}

	// Exact names: "api" is a new streamtype, not a patch of api_get, and
	// must be complete by itself.
	text, line, col := marked(t, `{"s": [{§"api": {"port": 1}}]}`)
	_, diags, err := ApplyOverlay(base, []byte(pol(text)), Options{})
	got := withCode(diags, CodeMissingKey)
	if err == nil || len(got) == 0 || got[0].Line != line || got[0].Col != col || !strings.Contains(got[0].Msg, "endpoint") {
		t.Errorf("incomplete new streamtype:%s", diagsText(diags))
	}

	// Replacing metadata revalidates the unpatched http_url.
	_, diags, err = ApplyOverlay(base, []byte(pol(`{"s": [{"api_get": {"metadata": [{"lang": ""}]}}]}`)), Options{})
	got = withCode(diags, CodeUndeclaredMetadata)
	if err == nil || len(got) != 1 || got[0].Path != "s[0].api_get.http_url" || !strings.Contains(got[0].Msg, `"item"`) {
		t.Errorf("metadata replacement:%s", diagsText(diags))
	}

	// Metadata is replaced, not appended.
	p, _ = mustOverlay(t, base, `{"s": [{"bulk": {"metadata": [{"file": ""}, {"x": "x-x:"}]}}]}`)
	if md := p.Streamtype("bulk").Metadata; len(md) != 2 || md[1].Name != "x" || md[1].Header != "x-x" {
		t.Errorf("bulk metadata = %+v", md)
	}

	// Values in the fragment are checked with fragment positions.
	text, line, col = marked(t, "{\"s\": [\n  {\"api_get\": {\"port\": §70000}}]}")
	_, diags, _ = ApplyOverlay(base, []byte(pol(text)), Options{})
	got = withCode(diags, CodeRange)
	if len(got) != 1 || got[0].Line != line || got[0].Col != col || got[0].Path != "s[0].api_get.port" {
		t.Errorf("fragment range error:%s", diagsText(diags))
	}
	// Patching with a type mismatch also points into the fragment.
	text, line, col = marked(t, `{"s": [{"api_get": §[]}]}`)
	_, diags, _ = ApplyOverlay(base, []byte(pol(text)), Options{})
	if got = withCode(diags, CodeType); len(got) != 1 || got[0].Line != line || got[0].Col != col {
		t.Errorf("fragment type error:%s", diagsText(diags))
	}
}

func TestOverlayErrors(t *testing.T) {
	base := exampleBase(t)
	cases := []struct {
		text string
		code Code
		sev  Severity
	}{
		{`{§"retry": [{"x": {}}], "s": []}`, CodeOverlaySection, E},
		{`{"s": [], §"certs": []}`, CodeOverlaySection, E},
		{`{§"release": "x"}`, CodeOverlaySection, E},
		{`{§"via-socks5": "a:1"}`, CodeOverlaySection, E},
		{`{§"zz": 1}`, CodeUnknownKey, W},
		{`{"schema-version": §2}`, CodeSchemaVersion, E},
		{`{"s": §{}}`, CodeType, E},
		{`{"s": [§1]}`, CodeType, E},
		{`{"s": [{"api_get": {"port": 1,§}}]}`, CodeSyntax, E},
		{`{"s": [{"api_get": {"port": 1, §"port": 2}}]}`, CodeDuplicateKey, W},
		{`{"s": [{"api_get": {§"prot": 2}}]}`, CodeUnknownKey, W},
		{`{"s": [{"api_get": {"retry": §"nope"}}]}`, CodeUnknownRef, E},
		{`{"s": [{"api_get": {"tls": §1}}]}`, CodeCoerced, W},
	}
	for _, c := range cases {
		text, line, col := marked(t, c.text)
		p, diags, err := ApplyOverlay(base, []byte(pol(text)), Options{})
		got := withCode(diags, c.code)
		if len(got) != 1 || got[0].Line != line || got[0].Col != col || got[0].Severity != c.sev {
			t.Errorf("%s: want one %s at %d:%d, got:%s", c.text, c.code, line, col, diagsText(diags))
		}
		if (c.sev == E) != (err != nil) || (err != nil) != (p == nil) {
			t.Errorf("%s: err = %v", c.text, err)
		}
		if c.sev == W {
			if _, _, err := ApplyOverlay(base, []byte(text), Options{Strict: true}); err == nil {
				t.Errorf("%s: strict overlay accepted a warning", c.text)
			}
		}
	}
	if _, _, err := ApplyOverlay(nil, []byte(`{}`), Options{}); !errors.Is(err, ErrNilBase) {
		t.Errorf("nil base: %v", err)
	}
	// Overlay is ApplyOverlay with default options.
	p, _, err := ApplyOverlay(base, []byte(`{"s": [{"api_get": {"port": 1}}]}`), Options{})
	if err != nil || p.Streamtype("api_get").Port != 1 {
		t.Errorf("Overlay: %v", err)
	}
	// Overlays chain.
	p2, _, err := ApplyOverlay(p, []byte(`{"s": [{"api_get": {"tls": false, "tls_trust_store": "example_test_alt"}}]}`), Options{})
	if err != nil || p2.Streamtype("api_get").Port != 1 || p2.Streamtype("api_get").TLS {
		t.Errorf("chained overlay: %v", err)
	}
}

func TestOverlayDuplicateKeysReportedOnce(t *testing.T) {
	base := exampleBase(t)
	for _, frag := range []string{
		`{"s": [{"api_get": {"port": 1, "port": 2}}]}`,
		`{"s": [{"fresh": {"endpoint": "e", "http_method": "GET", "port": 1, "port": 2}}]}`,
	} {
		p, diags, err := ApplyOverlay(base, []byte(pol(frag)), Options{})
		if err != nil || len(diags) != 1 || diags[0].Code != CodeDuplicateKey || diags[0].Line != 1 {
			t.Errorf("%s: %v%s", frag, err, diagsText(diags))
			continue
		}
		for _, st := range p.Streamtypes {
			if st.Name == "api_get" || st.Name == "fresh" {
				if st.Port != 2 && (st.Name == "fresh" || strings.Contains(frag, "api_get")) {
					t.Errorf("%s: port %d, want the later value 2", st.Name, st.Port)
				}
			}
		}
	}
}
