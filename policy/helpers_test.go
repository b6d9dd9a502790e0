package policy

import "testing"

func TestHelpers(t *testing.T) {
	st := &Streamtype{}
	if b, on, off := st.ProxyBuffer(); b != 32768 || on != 32768 || off != 16384 {
		t.Errorf("proxy defaults %d %d %d", b, on, off)
	}
	st = &Streamtype{ProxyBuflen: 1000, ProxyBuflenRxflowOnAbove: 800, ClientBuflen: 5, Options: []Option{{"a", "1"}}}
	if b, on, off := st.ProxyBuffer(); b != 1000 || on != 800 || off != 400 {
		t.Errorf("proxy values %d %d %d", b, on, off)
	}
	if v, ok := st.Option("a"); !ok || v != "1" {
		t.Error("Option")
	}
	if _, ok := st.Option("b"); ok || !st.IsHTTP() {
		t.Error("Option/IsHTTP")
	}
	m := &Metrics{Report: " ss_* , cpd,,a?c "}
	if g := m.reportGlobs(); len(g) != 3 || g[0] != "ss_*" || g[2] != "a?c" {
		t.Errorf("globs %q", g)
	}
	for name, want := range map[string]bool{"ss_x": true, "ss_": true, "cpd": true, "cpdx": false, "abc": true, "ac": false, "s": false} {
		if m.Reports(name) != want {
			t.Errorf("Reports(%q) != %v", name, want)
		}
	}
	if !globMatch("*a*b", "xxaxxb") || globMatch("*a*b", "xxaxxbc") || !globMatch("**", "") {
		t.Error("globMatch")
	}
}

func TestParseFile(t *testing.T) {
	p, _, err := ParseFile("testdata/example.json", Options{})
	if err != nil || len(p.Streamtypes) != 17 {
		t.Fatalf("ParseFile: %v", err)
	}
	if _, _, err := ParseFile("testdata/missing.json", Options{}); err == nil {
		t.Error("ParseFile of a missing file succeeded")
	}
}

func TestHandBuiltPoliciesWithNilEntries(t *testing.T) {
	for _, p := range []*Policy{
		{Retry: []*Retry{nil}}, {Certs: []*Cert{nil}}, {TrustStores: []*TrustStore{nil}},
		{TrustStores: []*TrustStore{{Stack: []*Cert{nil}}}}, {Auth: []*Auth{nil}}, {Metrics: []*Metrics{nil}},
		{Streamtypes: []*Streamtype{nil}}, {Streamtypes: []*Streamtype{{Metadata: []*MetadataItem{nil}}}},
	} {
		if _, err := p.MarshalJSON(); err == nil {
			t.Errorf("MarshalJSON(%+v) succeeded", p)
		}
		if _, err := Generate(p, GenOptions{}); err == nil {
			t.Errorf("Generate(%+v) succeeded", p)
		}
		if _, _, err := ApplyOverlay(p, []byte(`{}`), Options{}); err == nil {
			t.Errorf("ApplyOverlay(%+v) succeeded", p)
		}
	}
}
