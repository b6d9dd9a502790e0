package policy

import (
	"strings"
	"testing"
)

// TestURLPreencoded: url_preencoded marks declared items, refuses undeclared
// names and non-arrays, warns on protocols without URLs, and survives a
// MarshalJSON round trip.
func TestURLPreencoded(t *testing.T) {
	p, diags, err := Parse([]byte(keysPolicy(bH1+`"http_url": "/${p}", "metadata": [{"p": "", "q": "x-q:"}], "url_preencoded": ["p"]`)), Options{Strict: true})
	if err != nil {
		t.Fatalf("%v%s", err, diagsText(diags))
	}
	st := p.Streamtype("x")
	if !st.Metadata[0].PreEncoded || st.Metadata[1].PreEncoded {
		t.Fatalf("PreEncoded = %v, %v; want true, false", st.Metadata[0].PreEncoded, st.Metadata[1].PreEncoded)
	}
	js, err := p.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), `"url_preencoded"`) {
		t.Errorf("MarshalJSON lost url_preencoded:\n%s", js)
	}
	p2, diags, err := Parse(js, Options{Strict: true})
	if err != nil {
		t.Fatalf("reparse: %v%s", err, diagsText(diags))
	}
	if d := Diff(p, p2); d != "" {
		t.Errorf("round trip differs at %s", d)
	}

	for _, c := range []struct{ body, code, text string }{
		{bH1 + `"metadata": [{"p": ""}], "url_preencoded": ["nope"]`, string(CodeUndeclaredMetadata), `"nope"`},
		{bH1 + `"metadata": [{"p": ""}], "url_preencoded": "p"`, string(CodeType), "array of metadata names"},
		{bH1 + `"metadata": [{"p": ""}], "url_preencoded": [1]`, string(CodeType), "expected a string"},
	} {
		_, diags, err := Parse([]byte(keysPolicy(c.body)), Options{})
		if err == nil {
			t.Errorf("%s: parsed, want %s", c.body, c.code)
			continue
		}
		if got := diagsText(diags); !strings.Contains(got, c.code) || !strings.Contains(got, c.text) {
			t.Errorf("%s: diagnostics %s; want %s naming %s", c.body, got, c.code, c.text)
		}
	}
	_, diags, _ = Parse([]byte(keysPolicy(bMQTT+`"metadata": [{"p": ""}], "url_preencoded": ["p"]`)), Options{})
	if got := diagsText(diags); !strings.Contains(got, string(CodeNotApplicable)) {
		t.Errorf("mqtt url_preencoded: diagnostics %s; want not-applicable", got)
	}
}
