package policy

import (
	"strings"
	"testing"
)

// These assertions are the list of docs/policy-language.md §11.

func TestExamplePolicy(t *testing.T) {
	src := readTestdata(t, "example.json")
	p, noEffect := mustParseNoEffect(t, src)
	// The keys this implementation stores without acting on warn
	// (docs/lws-differences.md); nothing else does.
	wantNoEffect := []string{"metrics[0]", "s[1].events.h2q_oflow_txcr", "s[1].events.swake_validity", "s[1].bulk.attr_low_cost"}
	if strings.Join(noEffect, " ") != strings.Join(wantNoEffect, " ") {
		t.Fatalf("no-effect warnings at %v, want %v", noEffect, wantNoEffect)
	}
	if p.Release != "2026.11-example" || p.Product != "ss-example" || p.SchemaVersion != 1 {
		t.Errorf("top level = %q %q %d", p.Release, p.Product, p.SchemaVersion)
	}

	// Retry tables.
	retry := map[string]*Retry{}
	for _, r := range p.Retry {
		retry[r.Name] = r
	}
	if len(p.Retry) != 3 {
		t.Fatalf("retry policies = %d, want 3", len(p.Retry))
	}
	if got := retry["default"].Backoff; len(got) != 5 || got[4] != 10000 {
		t.Errorf("default backoff = %v", got)
	}
	if r := retry["default"]; r.Conceal != 5 || r.JitterPct != 20 || r.SValidPing != 30 || r.SValidHup != 35 {
		t.Errorf("default = %+v", r)
	}
	if r := retry["forever"]; len(r.Backoff) != 9 || r.Backoff[8] != 120000 || r.JitterPct != 0 || r.Conceal != 65535 {
		t.Errorf("forever = %+v", r)
	}
	if r := retry["fast"]; len(r.Backoff) != 2 || r.JitterPct != 30 || r.Conceal != 2 {
		t.Errorf("fast = %+v", r)
	}

	// Certs: both entries of one object, each of the right kind, matching.
	if len(p.Certs) != 2 {
		t.Fatalf("certs = %d, want 2", len(p.Certs))
	}
	cert, key := p.Certs[0], p.Certs[1]
	if cert.Name != "example_test_cert" || cert.Kind != KindCertificate || cert.Certificate == nil || cert.PrivateKey != nil {
		t.Errorf("cert = %+v", cert)
	}
	if cert.Certificate.Subject.CommonName != "example.test" {
		t.Errorf("cert CN = %q", cert.Certificate.Subject.CommonName)
	}
	if key.Name != "example_test_key" || key.Kind != KindPrivateKey || key.PrivateKey == nil || key.Certificate != nil {
		t.Errorf("key = %+v", key)
	}
	if !keyMatches(cert.Certificate, key.PrivateKey) {
		t.Error("key does not match the certificate")
	}

	// Trust stores, both shapes.
	if len(p.TrustStores) != 2 {
		t.Fatalf("trust stores = %d", len(p.TrustStores))
	}
	for i, name := range []string{"example_test", "example_test_alt"} {
		ts := p.TrustStores[i]
		if ts.Name != name || len(ts.Stack) != 1 || ts.Stack[0] != cert || ts.Pool == nil {
			t.Errorf("trust store %d = %+v", i, ts)
		}
		if !ts.Pool.Equal(NewStaticPool(cert)) {
			t.Errorf("trust store %s pool is not exactly its stack", name)
		}
	}

	// Auth: the forward reference resolves.
	if len(p.Auth) != 2 {
		t.Fatalf("auth = %d", len(p.Auth))
	}
	s3, dt := p.Auth[0], p.Auth[1]
	if s3.Name != "s3" || s3.Type != AuthSigV4 || s3.Blob != 0 || s3.Streamtype != nil {
		t.Errorf("s3 = %+v", s3)
	}
	if dt.Name != "device_token" || dt.Type != AuthToken || dt.Blob != 1 || dt.Streamtype != p.Streamtype("token_refresh") || dt.Streamtype == nil {
		t.Errorf("device_token = %+v", dt)
	}

	// Metrics.
	if len(p.Metrics) != 1 {
		t.Fatalf("metrics = %d", len(p.Metrics))
	}
	if m := p.Metrics[0]; m.Name != "default_metrics" || m.USSchedule != 60000000 || m.USHalflife != 2000000 || m.MinOutlier != 200 || m.Report != "ss_*,cpd" {
		t.Errorf("metrics = %+v", m)
	}

	// Streamtypes in document order.
	want := []string{"api_get", "upload_meta", "upload_data", "token_refresh", "s3_put", "events", "status_h3", "bulk",
		"chat", "telemetry", "commands", "line_raw", "local_raw", "web", "echo_srv", "fetch_policy", "captive_portal_detect"}
	if len(p.Streamtypes) != len(want) {
		t.Fatalf("streamtypes = %d, want %d", len(p.Streamtypes), len(want))
	}
	for i, name := range want {
		if p.Streamtypes[i].Name != name {
			t.Errorf("streamtype %d = %q, want %q", i, p.Streamtypes[i].Name, name)
		}
	}

	api := p.Streamtype("api_get")
	var names []string
	for i, m := range api.Metadata {
		names = append(names, m.Name)
		if m.Index != i {
			t.Errorf("metadata %s index %d, want %d", m.Name, m.Index, i)
		}
	}
	if strings.Join(names, ",") != "item,lang,ua,etag,ctype" {
		t.Errorf("api_get metadata = %v", names)
	}
	if api.Metadata[2].Header != "user-agent" || api.Metadata[2].HeaderRaw != "user-agent:" || api.Metadata[0].Header != "" {
		t.Errorf("metadata headers = %+v %+v", api.Metadata[2], api.Metadata[0])
	}
	if got := api.HTTPRespMap; len(got) != 2 || got[0] != (RespMapEntry{530, 1530}) || got[1] != (RespMapEntry{531, 1531}) {
		t.Errorf("api_get respmap = %v", got)
	}
	if api.Retry != retry["default"] || api.TrustStore != p.TrustStores[0] || api.Port != 8443 || !api.TLS || api.Protocol != H1 {
		t.Errorf("api_get general = %+v", api)
	}
	if got := api.HTTPURLTmpl.Expand(func(i int) string { return []string{"42", "en"}[i] }); got != "v1/items/42?lang=en" {
		t.Errorf("http_url expands to %q", got)
	}

	um, ud := p.Streamtype("upload_meta"), p.Streamtype("upload_data")
	if um.Rideshare != ud || um.RideshareName != "upload_data" {
		t.Errorf("upload_meta rideshare = %v", um.Rideshare)
	}
	if ud.HTTPMimeContentType != "application/octet-stream" || ud.HTTPMultipartFilename != "data.bin" {
		t.Errorf("upload_data multipart = %q %q", ud.HTTPMimeContentType, ud.HTTPMultipartFilename)
	}

	s3put := p.Streamtype("s3_put")
	if s3put.UseAuth != s3 || s3put.AWSRegion != "region" || s3put.AWSService != "service" {
		t.Errorf("s3_put auth = %+v", s3put)
	}
	ev := p.Streamtype("events")
	if ev.ClientCert != 0 || ev.TrustStore != p.TrustStores[1] || !ev.LongPoll || ev.HTTPAuthHeader != "authorization" || ev.HTTPAuthPreamble != "Bearer " ||
		ev.HTTPDSNHeader != "x-device-serial" || !ev.NGHTTP2QuirkEndStream || !ev.H2QOflowTxcr || !ev.SwakeValidity || ev.UseAuth != dt {
		t.Errorf("events = %+v", ev)
	}
	if st := p.Streamtype("bulk"); st.ProxyBuflen != 65536 || st.ProxyBuflenRxflowOnAbove != 49152 || st.ProxyBuflenRxflowOffBelow != 16384 || st.ClientBuflen != 65536 {
		t.Errorf("bulk buffers = %+v", st)
	}
	chat := p.Streamtype("chat")
	if chat.ViaSOCKS5 != "127.0.0.1:1080" || chat.ViaSOCKS5Own != "127.0.0.1:1080" || chat.HTTPMethod != "" || !chat.WSBinary || chat.WSSubprotocol != "chat.v1" {
		t.Errorf("chat = %+v", chat)
	}
	tel := p.Streamtype("telemetry")
	if got := tel.MQTTWillTopicTmpl.Expand(func(int) string { return "d1" }); got != "devices/d1/status" {
		t.Errorf("telemetry will topic = %q", got)
	}
	if st := p.Streamtype("commands"); st.MQTTSubscribe != "devices/${device}/cmd/#" || st.MQTTQoS != 1 || st.MQTTKeepAlive != 60 {
		t.Errorf("commands = %+v", st)
	}
	web := p.Streamtype("web")
	if !web.Server || web.ServerCert != cert || web.ServerKey != key || len(web.Options) != 1 || web.Options[0] != (Option{"greeting", "hello"}) {
		t.Errorf("web = %+v", web)
	}
	if st := p.Streamtype("local_raw"); st.Endpoint != "+@example.raw" || st.Protocol != Raw || st.Retry != nil {
		t.Errorf("local_raw = %+v", st)
	}
	if st := p.Streamtype("captive_portal_detect"); st.HTTPExpect != 204 || !st.HTTPFailRedirect || st.TimeoutMS != 3000 {
		t.Errorf("captive_portal_detect = %+v", st)
	}
}

// replaceNth replaces the n-th (1-based) occurrence of old in s.
func replaceNth(t *testing.T, s, old, new string, n int) string {
	t.Helper()
	at := -1
	for i := 0; i < n; i++ {
		j := strings.Index(s[at+1:], old)
		if j < 0 {
			t.Fatalf("occurrence %d of %q not found", n, old)
		}
		at += 1 + j
	}
	return s[:at] + new + s[at+len(old):]
}

func TestExampleVariants(t *testing.T) {
	src := readTestdata(t, "example.json")

	t.Run("mqtt keep-alive mismatch", func(t *testing.T) {
		mod := replaceNth(t, src, `"mqtt_keep_alive": 60`, `"mqtt_keep_alive": 30`, 2)
		_, all := mustParse(t, pol(mod), Options{})
		var diags []Diagnostic
		for _, d := range all {
			if d.Code != CodeNoEffect {
				diags = append(diags, d)
			}
		}
		if len(diags) != 1 || diags[0].Code != CodeMQTTSharedMismatch || diags[0].Severity != SeverityWarning {
			t.Fatalf("want exactly one mqtt-shared-mismatch warning, got:%s", diagsText(diags))
		}
		d := diags[0]
		if d.Path != "s[2].commands.mqtt_keep_alive" || !strings.Contains(d.Msg, "telemetry") || !strings.Contains(d.Msg, "commands") {
			t.Errorf("diagnostic = %s", d)
		}
		if _, _, err := Parse([]byte(mod), Options{Strict: true}); err == nil {
			t.Error("strict mode accepted the mismatch")
		}
	})

	t.Run("undeclared metadata", func(t *testing.T) {
		mod := strings.Replace(src, `{ "item": "", "lang": "" }`, `{ "lang": "" }`, 1)
		_, diags, err := Parse([]byte(pol(mod)), Options{})
		if err == nil {
			t.Fatal("no error")
		}
		got := withCode(diags, CodeUndeclaredMetadata)
		if len(got) != 1 || got[0].Path != "s[0].api_get.http_url" || !strings.Contains(got[0].Msg, `"item"`) {
			t.Fatalf("diagnostics:%s", diagsText(diags))
		}
		line := 1 + strings.Count(mod[:strings.Index(mod, `"v1/items/`)], "\n")
		if got[0].Line != line || got[0].Col != 21 {
			t.Errorf("position %d:%d, want %d:21", got[0].Line, got[0].Col, line)
		}
	})

	t.Run("retry prefix does not match", func(t *testing.T) {
		mod := strings.Replace(src, `"retry": "default",`, `"retry": "def",`, 1)
		_, diags, err := Parse([]byte(pol(mod)), Options{})
		if err == nil {
			t.Fatal("no error")
		}
		got := withCode(diags, CodeUnknownRef)
		if len(got) != 1 || got[0].Path != "s[0].api_get.retry" || !strings.Contains(got[0].Msg, `"def"`) {
			t.Fatalf("diagnostics:%s", diagsText(diags))
		}
	})
}
