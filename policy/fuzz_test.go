package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// seedCorpus adds every test policy and every testdata file to f.
func seedCorpus(f *testing.F) {
	corpusMu.Lock()
	texts := append([]string(nil), corpus...)
	corpusMu.Unlock()
	files, _ := filepath.Glob("testdata/*.json")
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			texts = append(texts, string(b))
		}
	}
	texts = append(texts, policy50(), "", "{", "}", "[]", "{\"s\":[{\"x\":{}},]}", "\ufeff{}")
	for _, s := range texts {
		f.Add([]byte(s))
	}
}

// FuzzParse checks that Parse never panics, that its results are
// consistent, and that every accepted policy survives encoding, Format and
// generation.
func FuzzParse(f *testing.F) {
	seedCorpus(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		p, diags, err := Parse(data, Options{})
		if (err == nil) != (p != nil) {
			t.Fatalf("err %v with policy %v", err, p != nil)
		}
		hasErr := false
		for _, d := range diags {
			hasErr = hasErr || d.Severity == SeverityError
			if d.Line < 1 || d.Col < 1 || d.Code == "" || d.Msg == "" {
				t.Fatalf("diagnostic without position or text: %#v", d)
			}
		}
		if hasErr != (err != nil) {
			t.Fatalf("error diagnostics %v but err %v", hasErr, err)
		}
		for i := 1; i < len(diags); i++ {
			if a, b := diags[i-1], diags[i]; a.Line > b.Line || (a.Line == b.Line && a.Col > b.Col) {
				t.Fatalf("diagnostics out of order: %s, %s", a, b)
			}
		}
		sp, sdiags, serr := Parse(data, Options{Strict: true})
		if (serr == nil) != (len(diags) == 0) || len(sdiags) != len(diags) || (sp == nil) != (serr != nil) {
			t.Fatalf("strict mode: %d diagnostics, err %v; normal mode: %d diagnostics", len(sdiags), serr, len(diags))
		}
		if out, ferr := Format(data); ferr == nil {
			if _, syn := parseJSON(out); syn != nil {
				t.Fatalf("Format output does not parse: %s\n%s", syn, out)
			}
		}
		if p == nil {
			return
		}
		enc, _ := p.MarshalJSON()
		p2, diags2, err := Parse(enc, Options{})
		if err != nil {
			t.Fatalf("encoded policy does not parse: %v%s\n%s", err, diagsText(diags2), enc)
		}
		if d := Diff(p, p2); d != "" {
			t.Fatalf("encoded policy differs at %s\n%s", d, enc)
		}
		// Generate without the (costly, standard library) gofmt step.
		if _, err := generateSource(p, GenOptions{}); err != nil {
			t.Fatalf("Generate: %v", err)
		}
		for _, st := range p.Streamtypes {
			for _, tm := range []*Template{st.EndpointTmpl, st.HTTPURLTmpl, st.MQTTTopicTmpl} {
				tm.Expand(func(i int) string {
					if i < 0 || i >= len(st.Metadata) {
						t.Fatalf("template index %d out of range", i)
					}
					return "v"
				})
			}
		}
	})
}

// FuzzOverlay applies arbitrary fragments to the example policy.
func FuzzOverlay(f *testing.F) {
	base, _, err := ParseFile("testdata/example.json", Options{})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{`{}`, `{"s": [{"api_get": {"port": 1}}]}`, `{"s": [{"new": {"endpoint": "e"}}]}`,
		`{"retry": []}`, `{"s": [{"api_get": []}]}`, `{"s": [{"web": {"tls": false}}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frag []byte) {
		p, _, err := ApplyOverlay(base, frag, Options{})
		if (err == nil) != (p != nil) {
			t.Fatalf("err %v with policy %v", err, p != nil)
		}
		if p == nil {
			return
		}
		if p == base {
			t.Fatal("overlay returned the base")
		}
		again, diags, err := ApplyOverlay(p, []byte(`{}`), Options{})
		if err != nil {
			t.Fatalf("empty overlay on the result failed: %v%s", err, diagsText(diags))
		}
		if d := Diff(p, again); d != "" {
			t.Fatalf("empty overlay changed the result at %s", d)
		}
	})
}

// policy50 returns a policy with 50 streamtypes of every protocol.
func policy50() string {
	var b strings.Builder
	b.WriteString(`{
  "release": "bench", "schema-version": 1,
  "retry": [{"default": {"backoff": [1000, 2000, 3000, 5000, 10000], "conceal": 5, "jitterpc": 20, "svalidping": 30, "svalidhup": 35}},
            {"fast": {"backoff": [100, 200], "conceal": 2}}],
  "certs": [{"ca": "` + testCertB64 + `", "key": "` + testKeyB64 + `"}],
  "trust_stores": [{"name": "ts", "stack": ["ca"]}],
  "auth": [{"name": "tok", "streamtype": "st0", "blob": 1}],
  "s": [{
`)
	for i := 0; i < 50; i++ {
		if i > 0 {
			b.WriteString(",\n")
		}
		switch i % 5 {
		case 0, 1:
			fmt.Fprintf(&b, `    "st%d": {"endpoint": "api%d.example.test", "port": 8443, "protocol": "h2", "http_method": "POST",
      "http_url": "v1/items/${item}?lang=${lang}", "tls": true, "tls_trust_store": "ts", "retry": "default",
      "http_resp_map": [{"530": 1530}], "use_auth": "tok", "http_auth_header": "authorization:", "http_auth_preamble": "Bearer ",
      "metadata": [{"item": "", "lang": ""}, {"ua": "user-agent:"}, {"ctype": "content-type:"}], "timeout_ms": 5000}`, i, i)
		case 2:
			fmt.Fprintf(&b, `    "st%d": {"endpoint": "127.0.0.1", "port": 7681, "protocol": "ws", "http_url": "chat/${room}",
      "ws_subprotocol": "chat.v1", "ws_binary": true, "nailed_up": true, "retry": "fast", "metadata": [{"room": ""}]}`, i)
		case 3:
			fmt.Fprintf(&b, `    "st%d": {"endpoint": "broker.test", "port": 1883, "protocol": "mqtt", "mqtt_topic": "devices/${device}/t%d",
      "mqtt_qos": 1, "mqtt_keep_alive": 60, "mqtt_clean_start": true, "mqtt_will_topic": "devices/${device}/status",
      "mqtt_will_message": "offline", "nailed_up": true, "retry": "default", "metadata": [{"device": ""}]}`, i, i)
		case 4:
			fmt.Fprintf(&b, `    "st%d": {"server": true, "protocol": "h1", "port": %d, "tls": true, "server_cert": "ca", "server_key": "key",
      "metadata": [{"method": "", "path": ""}], "options": [{"greeting": "hello"}]}`, i, 9000+i)
		}
	}
	b.WriteString("\n  }]\n}\n")
	return b.String()
}

func TestPolicy50(t *testing.T) {
	p, diags := mustParse(t, policy50(), Options{Strict: true})
	if len(p.Streamtypes) != 50 || len(diags) != 0 {
		t.Fatalf("%d streamtypes%s", len(p.Streamtypes), diagsText(diags))
	}
}

// BenchmarkParse50 parses a 50-streamtype policy (about 20 KB).
func BenchmarkParse50(b *testing.B) {
	data := []byte(policy50())
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Parse(data, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkExpand expands a two-substitution http_url template.
func BenchmarkExpand(b *testing.B) {
	tm, _, _ := compileTemplate("v1/items/${item}?lang=${lang}", func(n string) int { return map[string]int{"item": 0, "lang": 1}[n] })
	vals := []string{"12345", "en"}
	value := func(i int) string { return vals[i] }
	b.ReportAllocs()
	for b.Loop() {
		tm.Expand(value)
	}
}

// FuzzJSONDifferential checks the tokenizer against encoding/json: every
// valid JSON object (valid UTF-8, within the nesting limit) must parse to
// the same value.
func FuzzJSONDifferential(f *testing.F) {
	seedCorpus(f)
	for _, s := range []string{`{"a": [1, -0.5e+3, "\ud83d\ude00\u0000", true, false, null, {}]}`, `{"a":"\ud800x", "a": 2}`, "{\"\\u00e9\": \"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) || !utf8.Valid(data) {
			return
		}
		var want any
		if err := json.Unmarshal(data, &want); err != nil {
			return
		}
		if _, ok := want.(map[string]any); !ok {
			return
		}
		root, syn := parseJSON(data)
		if syn != nil {
			if strings.Contains(syn.Msg, "nesting deeper") {
				return
			}
			t.Fatalf("valid JSON rejected: %s", syn)
		}
		var buf bytes.Buffer
		writeJSON(&buf, root, 0)
		var got any
		if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
			t.Fatalf("re-encoded tree is not JSON: %v\n%s", err, buf.Bytes())
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("tree differs from encoding/json:\n got %#v\nwant %#v", got, want)
		}
	})
}
