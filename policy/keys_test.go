package policy

import (
	"reflect"
	"strings"
	"testing"
)

// Test certificate and key of the spec example (test-only).
const (
	testCertB64 = "MIIBpTCCAUqgAwIBAgIUKCASkZi7lqHbhGbaitY+W7nEVcQwCgYIKoZIzj0EAwIwFzEVMBMGA1UEAwwMZXhhbXBsZS50ZXN0MCAXDTI2MTEyNjAzNDg0NFoYDzIxMjYxMTAyMDM0ODQ0WjAXMRUwEwYDVQQDDAxleGFtcGxlLnRlc3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARuXl8btV+eFhOcqQiAAr1t12blbiP7qmYNcFKPBA1Unyb9f7vj1os1zBxvQYNnXWtxVa28z22aIv7CiGLFXuoro3IwcDAdBgNVHQ4EFgQUqqbLoEpmlyvp5fGjq8AUSKZsbzMwHwYDVR0jBBgwFoAUqqbLoEpmlyvp5fGjq8AUSKZsbzMwDwYDVR0TAQH/BAUwAwEB/zAdBgNVHREEFjAUggxleGFtcGxlLnRlc3SHBH8AAAEwCgYIKoZIzj0EAwIDSQAwRgIhAOzMhy2OW0b4S8fQUt2snOeK/8AK0spFotNo+v7XCNDUAiEAqYZUIoxFG0dQjvzpDkEAyZ1pQXt8sckGoxOQwRA5x1g="
	testKeyB64  = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgiDv1+B8bQYxNqTclzRIbgjsYS+xWGP8nccKIwx56L/GhRANCAARuXl8btV+eFhOcqQiAAr1t12blbiP7qmYNcFKPBA1Unyb9f7vj1os1zBxvQYNnXWtxVa28z22aIv7CiGLFXuor"
)

// keysPolicy wraps the body of streamtype "x" in a policy whose other
// sections give every reference something to resolve to.
func keysPolicy(body string) string {
	return `{
  "retry": [{"r1": {"backoff": [10], "conceal": 1}}],
  "certs": [{"c": "` + testCertB64 + `", "k": "` + testKeyB64 + `"}],
  "trust_stores": [{"name": "ts", "stack": ["c"]}],
  "auth": [{"name": "sig", "type": "sigv4"}, {"name": "tok", "streamtype": "other"}],
  "s": [{
    "x": {` + body + `},
    "other": {"endpoint": "o.test", "http_method": "GET"},
    "lsn": {"server": true, "port": 9000}
  }]
}`
}

const (
	bH1   = `"endpoint": "e.test", "http_method": "GET", `
	bTLS  = bH1 + `"tls": true, `
	bH2   = `"protocol": "h2", "endpoint": "e.test", "http_method": "GET", `
	bWS   = `"protocol": "ws", "endpoint": "e.test", `
	bMQTT = `"protocol": "mqtt", "endpoint": "b.test", "mqtt_topic": "t", `
	bSrv  = `"server": true, "port": 8080, `
	bWSrv = bSrv + `"ws_subprotocol": "p", `
)

type keyCase struct {
	key   string // the streamtype key covered
	body  string // streamtype body
	field string // Streamtype field checked
	want  any
}

var keyCases = []keyCase{
	{"protocol", `"protocol": "h1", ` + bH1[:len(bH1)-2], "Protocol", H1},
	{"protocol", bH2[:len(bH2)-2], "Protocol", H2},
	{"protocol", `"protocol": "h3", "tls": true, "endpoint": "e", "http_method": "GET"`, "Protocol", H3},
	{"protocol", bWS[:len(bWS)-2], "Protocol", WS},
	{"protocol", bMQTT[:len(bMQTT)-2], "Protocol", MQTT},
	{"protocol", `"protocol": "raw", "endpoint": "e", "port": 1`, "Protocol", Raw},
	{"endpoint", `"endpoint": "https://e.test:8443/x", "http_method": "GET"`, "Endpoint", "https://e.test:8443/x"},
	{"endpoint", `"endpoint": "${host}.test", "http_method": "GET", "metadata": [{"host": ""}]`, "EndpointTmpl", &Template{Raw: "${host}.test", Parts: []TemplatePart{{Lit: "host", Meta: 0}, {Lit: ".test", Meta: -1}}}},
	{"endpoint", bSrv + `"endpoint": "!lsn"`, "Endpoint", "!lsn"},
	{"port", bH1 + `"port": 65535`, "Port", uint16(65535)},
	{"port", bH1 + `"port": "443"`, "Port", uint16(443)}, // coerced: see TestCoercions
	{"tls", bH1 + `"tls": true`, "TLS", true},
	{"tls_trust_store", bTLS + `"tls_trust_store": "ts"`, "TrustStoreName", "ts"},
	{"client_cert", bTLS + `"client_cert": 254`, "ClientCert", 254},
	{"client_cert", bTLS[:len(bTLS)-2], "ClientCert", -1},
	{"retry", bH1 + `"retry": "r1"`, "RetryName", "r1"},
	{"timeout_ms", bH1 + `"timeout_ms": 4294967295`, "TimeoutMS", uint32(4294967295)},
	{"opportunistic", bH1 + `"opportunistic": true`, "Opportunistic", true},
	{"nailed_up", bH1 + `"nailed_up": true`, "NailedUp", true},
	{"allow_redirects", bH1 + `"allow_redirects": true`, "AllowRedirects", true},
	{"urgent_tx", bH1 + `"urgent_tx": true`, "UrgentTx", true},
	{"urgent_rx", bH1 + `"urgent_rx": true`, "UrgentRx", true},
	{"attr_priority", bH1 + `"attr_priority": 7`, "AttrPriority", uint8(7)},
	{"attr_low_latency", bH1 + `"attr_low_latency": true`, "AttrLowLatency", true},
	{"attr_high_throughput", bH1 + `"attr_high_throughput": true`, "AttrHighThroughput", true},
	{"attr_high_reliability", bH1 + `"attr_high_reliability": true`, "AttrHighReliability", true},
	{"attr_low_cost", bH1 + `"attr_low_cost": true`, "AttrLowCost", true},
	{"perf", bH1 + `"perf": true`, "Perf", true},
	{"metadata", bH1 + `"metadata": [{"a": "", "b": "X-B:"}, {"c": "x-c"}]`, "Metadata", []*MetadataItem{
		{Name: "a"}, {Name: "b", Header: "X-B", HeaderRaw: "X-B:", Index: 1}, {Name: "c", Header: "x-c", HeaderRaw: "x-c", Index: 2}}},
	{"metadata", bH1 + `"metadata": []`, "Metadata", []*MetadataItem(nil)},
	{"rideshare", bH1 + `"rideshare": "other"`, "RideshareName", "other"},
	{"payload_fmt", bH1 + `"payload_fmt": "application/cbor"`, "PayloadFmt", "application/cbor"},
	{"local_sink", `"local_sink": true, "protocol": "raw"`, "LocalSink", true},
	{"local_sink", `"local_sink": true`, "HTTPMethod", "GET"},
	{"swake_validity", bH1 + `"swake_validity": true`, "SwakeValidity", true},
	{"direct_proto_str", bH1 + `"direct_proto_str": true`, "DirectProtoStr", true},
	{"via-socks5", bH1 + `"via-socks5": "user:pw@[::1]:1080"`, "ViaSOCKS5Own", "user:pw@[::1]:1080"},
	{"via-socks5", bH1 + `"via-socks5": "proxy.test:1080"`, "ViaSOCKS5", "proxy.test:1080"},
	{"use_auth", bH1 + `"use_auth": "tok"`, "UseAuthName", "tok"},
	{"aws_region", bH1 + `"use_auth": "sig", "metadata": [{"reg": "", "svc": ""}], "aws_region": "reg", "aws_service": "svc"`, "AWSRegion", "reg"},
	{"aws_service", bH1 + `"use_auth": "sig", "metadata": [{"reg": "", "svc": ""}], "aws_region": "reg", "aws_service": "svc"`, "AWSService", "svc"},
	{"options", bSrv + `"options": [{"a": "1", "b": ""}, {"c": "3"}]`, "Options", []Option{{"a", "1"}, {"b", ""}, {"c", "3"}}},
	{"server", bSrv[:len(bSrv)-2], "Server", true},
	{"server_cert", bSrv + `"tls": true, "server_cert": "c", "server_key": "k"`, "ServerCertName", "c"},
	{"server_key", bSrv + `"tls": true, "server_cert": "c", "server_key": "k"`, "ServerKeyName", "k"},
	{"proxy_buflen", bH1 + `"proxy_buflen": 100000`, "ProxyBuflen", uint32(100000)},
	{"proxy_buflen_rxflow_on_above", bH1 + `"proxy_buflen_rxflow_on_above": 20000`, "ProxyBuflenRxflowOnAbove", uint32(20000)},
	{"proxy_buflen_rxflow_off_below", bH1 + `"proxy_buflen_rxflow_off_below": 1000`, "ProxyBuflenRxflowOffBelow", uint32(1000)},
	{"client_buflen", bH1 + `"client_buflen": 7`, "ClientBuflen", uint32(7)},
	{"client_buflen_rxflow_on_above", bH1 + `"client_buflen_rxflow_on_above": 8`, "ClientBuflenRxflowOnAbove", uint32(8)},
	{"client_buflen_rxflow_off_below", bH1 + `"client_buflen_rxflow_off_below": 9`, "ClientBuflenRxflowOffBelow", uint32(9)},
	{"http_method", `"endpoint": "e", "http_method": "patch"`, "HTTPMethod", "patch"},
	{"http_url", bH1 + `"http_url": "/a?b=c"`, "HTTPURL", "/a?b=c"},
	{"http_url", bWS + `"http_url": "chat"`, "HTTPURLTmpl", &Template{Raw: "chat", Parts: []TemplatePart{{Lit: "chat", Meta: -1}}}},
	{"http_expect", bH1 + `"http_expect": 599`, "HTTPExpect", 599},
	{"http_fail_redirect", bH1 + `"http_fail_redirect": true`, "HTTPFailRedirect", true},
	{"http_resp_map", bH1 + `"http_resp_map": [{"404": 1404, "503": 65535}, {"100": 1000}]`, "HTTPRespMap", []RespMapEntry{{404, 1404}, {503, 65535}, {100, 1000}}},
	{"http_auth_header", bH1 + `"http_auth_header": "authorization:"`, "HTTPAuthHeader", "authorization"},
	{"http_auth_header", bH1 + `"http_auth_header": "x-token"`, "HTTPAuthHeader", "x-token"},
	{"http_auth_preamble", bH1 + `"http_auth_header": "a:", "http_auth_preamble": "Bearer "`, "HTTPAuthPreamble", "Bearer "},
	{"auth_hexify", bH1 + `"http_auth_header": "a:", "auth_hexify": true`, "AuthHexify", true},
	{"http_dsn_header", bH1 + `"http_dsn_header": "x-dsn:"`, "HTTPDSNHeader", "x-dsn"},
	{"http_fwv_header", bH1 + `"http_fwv_header": "x-fwv:"`, "HTTPFWVHeader", "x-fwv"},
	{"http_devtype_header", bH1 + `"http_devtype_header": "x-dt:"`, "HTTPDevtypeHeader", "x-dt"},
	{"http_no_content_length", bH1 + `"http_no_content_length": true`, "HTTPNoContentLength", true},
	{"http_no_content_length", bSrv + `"http_no_content_length": true`, "HTTPNoContentLength", true},
	{"http_www_form_urlencoded", bH1 + `"http_www_form_urlencoded": true`, "HTTPWWWFormURLEncoded", true},
	{"http_multipart_name", bH1 + `"http_multipart_name": "file"`, "HTTPMultipartName", "file"},
	{"http_multipart_filename", bH1 + `"http_multipart_filename": "a.bin"`, "HTTPMultipartFilename", "a.bin"},
	{"http_mime_content_type", bH1 + `"http_mime_content_type": "text/plain"`, "HTTPMimeContentType", "text/plain"},
	{"http_multipart_content_type", bH1 + `"http_multipart_content_type": "text/csv"`, "HTTPMimeContentType", "text/csv"},
	{"http_multipart_ss_in", bH1 + `"http_multipart_ss_in": true`, "HTTPMultipartSSIn", true},
	{"http_cookies", bH1 + `"http_cookies": true`, "HTTPCookies", true},
	{"http_cookies", bWS + `"http_cookies": true`, "HTTPCookies", true},
	{"nghttp2_quirk_end_stream", bH2 + `"nghttp2_quirk_end_stream": true`, "NGHTTP2QuirkEndStream", true},
	{"h2q_oflow_txcr", bH2 + `"h2q_oflow_txcr": true`, "H2QOflowTxcr", true},
	{"long_poll", bH2 + `"long_poll": true`, "LongPoll", true},
	{"ws_subprotocol", bWS + `"ws_subprotocol": "v1"`, "WSSubprotocol", "v1"},
	{"ws_subprotocol", bSrv + `"ws_subprotocol": "v2"`, "WSSubprotocol", "v2"},
	{"ws_binary", bWS + `"ws_binary": true`, "WSBinary", true},
	{"ws_binary", bWSrv + `"ws_binary": true`, "WSBinary", true},
	{"ws_prioritize_reads", bWS + `"ws_prioritize_reads": true`, "WSPrioritizeReads", true},
	{"mqtt_topic", `"protocol": "mqtt", "endpoint": "b", "mqtt_topic": "d/${id}/t", "metadata": [{"id": ""}]`, "MQTTTopicTmpl", &Template{Raw: "d/${id}/t", Parts: []TemplatePart{{Lit: "d/", Meta: -1}, {Lit: "id", Meta: 0}, {Lit: "/t", Meta: -1}}}},
	{"mqtt_subscribe", `"protocol": "mqtt", "endpoint": "b", "mqtt_subscribe": "a/#"`, "MQTTSubscribe", "a/#"},
	{"mqtt_qos", bMQTT + `"mqtt_qos": 2`, "MQTTQoS", uint8(2)},
	{"mqtt_retain", bMQTT + `"mqtt_retain": true`, "MQTTRetain", true},
	{"mqtt_keep_alive", bMQTT + `"mqtt_keep_alive": 65535`, "MQTTKeepAlive", uint16(65535)},
	{"mqtt_clean_start", bMQTT + `"mqtt_clean_start": true`, "MQTTCleanStart", true},
	{"mqtt_will_topic", bMQTT + `"mqtt_will_topic": "w"`, "MQTTWillTopic", "w"},
	{"mqtt_will_message", bMQTT + `"mqtt_will_message": "bye"`, "MQTTWillMessage", "bye"},
	{"mqtt_will_qos", bMQTT + `"mqtt_will_qos": 1`, "MQTTWillQoS", uint8(1)},
	{"mqtt_will_retain", bMQTT + `"mqtt_will_retain": true`, "MQTTWillRetain", true},
	{"mqtt_birth_topic", bMQTT + `"mqtt_birth_topic": "b"`, "MQTTBirthTopic", "b"},
	{"mqtt_birth_message", bMQTT + `"mqtt_birth_message": "hi"`, "MQTTBirthMessage", "hi"},
	{"mqtt_birth_qos", bMQTT + `"mqtt_birth_qos": 2`, "MQTTBirthQoS", uint8(2)},
	{"mqtt_birth_retain", bMQTT + `"mqtt_birth_retain": true`, "MQTTBirthRetain", true},
	{"mqtt_ws_path", bMQTT + `"mqtt_ws_path": "/mqtt"`, "MQTTWSPath", "/mqtt"},
	{"aws_iot", bMQTT + `"aws_iot": true`, "AWSIoT", true},
	{"ws_max_rx_message", bWS + `"ws_max_rx_message": 1048576`, "WSMaxRxMessage", uint32(1048576)},
	{"url_preencoded", bH1 + `"http_url": "/${p}/${q}", "metadata": [{"p": "", "q": ""}], "url_preencoded": ["p"]`, "Metadata", []*MetadataItem{
		{Name: "p", Index: 0, PreEncoded: true}, {Name: "q", Index: 1}}},
}

func init() {
	for _, c := range keyCases {
		pol(keysPolicy(c.body))
	}
}

func TestStreamtypeKeys(t *testing.T) {
	covered := map[string]bool{"plugins": true} // plugins: TestDiagnostics (deprecated-key)
	for _, c := range keyCases {
		covered[c.key] = true
		t.Run(c.key, func(t *testing.T) {
			inert := stKeys[stKeyIdx[c.key]].noEffect != ""
			strict := !strings.Contains(c.body, `"443"`) && !inert // the coerced case warns
			p, diags, err := Parse([]byte(keysPolicy(c.body)), Options{Strict: strict})
			if err != nil {
				t.Fatalf("%v%s", err, diagsText(diags))
			}
			if inert && (len(diags) != 1 || diags[0].Code != CodeNoEffect || !strings.Contains(diags[0].Msg, "has no effect in this implementation")) {
				t.Errorf("%s: want one no-effect warning, got:%s", c.key, diagsText(diags))
			}
			st := p.Streamtype("x")
			got := reflect.ValueOf(st).Elem().FieldByName(c.field)
			if !got.IsValid() {
				t.Fatalf("no field %s", c.field)
			}
			if !reflect.DeepEqual(got.Interface(), c.want) {
				t.Errorf("%s = %#v, want %#v", c.field, got.Interface(), c.want)
			}
		})
	}
	for _, name := range stKeyNames {
		if !covered[name] {
			t.Errorf("streamtype key %q has no test case", name)
		}
	}
}

func TestResolvedReferences(t *testing.T) {
	p, _ := mustParse(t, keysPolicy(bTLS+`"tls_trust_store": "ts", "retry": "r1", "use_auth": "tok", "rideshare": "other"`), Options{Strict: true})
	x, other := p.Streamtype("x"), p.Streamtype("other")
	if x.TrustStore != p.TrustStores[0] || x.Retry != p.Retry[0] || x.UseAuth != p.Auth[1] || x.Rideshare != other {
		t.Errorf("references not resolved: %+v", x)
	}
	if p.Auth[1].Streamtype != other {
		t.Errorf("auth streamtype = %v", p.Auth[1].Streamtype)
	}
	if other.HTTPMethod != "GET" || other.ClientCert != -1 || other.Retry != nil {
		t.Errorf("defaults: %+v", other)
	}

	p, _ = mustParse(t, keysPolicy(bSrv+`"tls": true, "server_cert": "c", "server_key": "k"`), Options{Strict: true})
	x = p.Streamtype("x")
	if x.ServerCert != p.Certs[0] || x.ServerKey != p.Certs[1] {
		t.Errorf("server cert/key: %+v", x)
	}
	p, _ = mustParse(t, keysPolicy(bSrv+`"endpoint": "!lsn"`), Options{Strict: true})
	if p.Streamtype("x").ListenerOf != p.Streamtype("lsn") {
		t.Error("ListenerOf not resolved")
	}
	// Top-level via-socks5 is the default of every client streamtype.
	p, _ = mustParse(t, pol(`{"via-socks5": "s.test:1080", "s": [{"a": {"endpoint": "e", "http_method": "GET"},
		"b": {"endpoint": "e", "http_method": "GET", "via-socks5": "t.test:9"}}]}`), Options{Strict: true})
	if p.ViaSOCKS5 != "s.test:1080" || p.Streamtype("a").ViaSOCKS5 != "s.test:1080" || p.Streamtype("a").ViaSOCKS5Own != "" || p.Streamtype("b").ViaSOCKS5 != "t.test:9" {
		t.Errorf("via-socks5: %q %q %q", p.ViaSOCKS5, p.Streamtype("a").ViaSOCKS5, p.Streamtype("b").ViaSOCKS5)
	}
}

var sectionPolicy = pol(`{
  "release": "r", "product": "p", "schema-version": 0,
  "retry": [{"a": {"backoff": [0, 2147483647], "conceal": 65535, "jitterpc": 100, "svalidping": 65535, "svalidhup": 1}},
            {"b": {}}],
  "certs": [{"c1": "` + testCertB64 + `"}, {"c2": "` + wrapB64(testCertB64) + `", "k": "` + strings.TrimRight(testKeyB64, "=") + `"}],
  "trust_stores": [{"stack": ["c1", "c2"], "name": "A"}, {"B": ["c2"], "C": ["c1"]}],
  "auth": [{"name": "n1", "type": "lwa", "blob": 3, "streamtype": "s1"}, {"name": "n2", "type": "jwt"}, {"name": "n3"}],
  "metrics": [{"us_schedule": 9223372036854775807, "name": "m", "us_halflife": 4294967295, "min_outlier": 255, "report": "a*, b?"}],
  "s": [{"s1": {"endpoint": "e", "http_method": "POST", "http_www_form_urlencoded": true}}]
}`)

// wrapB64 wraps base64 text like a PEM body, with newline escapes.
func wrapB64(s string) string {
	var b strings.Builder
	for len(s) > 64 {
		b.WriteString(s[:64] + `\n`)
		s = s[64:]
	}
	b.WriteString(s + `\r\n `)
	return b.String()
}

func TestSectionKeys(t *testing.T) {
	p, noEffect := mustParseNoEffect(t, sectionPolicy)
	if len(noEffect) != 1 || noEffect[0] != "metrics[0]" {
		t.Errorf("no-effect warnings at %v, want metrics[0]", noEffect)
	}
	if p.Release != "r" || p.Product != "p" || p.SchemaVersion != 0 {
		t.Errorf("top = %q %q %d", p.Release, p.Product, p.SchemaVersion)
	}
	a, b := p.Retry[0], p.Retry[1]
	if !reflect.DeepEqual(a, &Retry{Name: "a", Backoff: []uint32{0, 2147483647}, Conceal: 65535, JitterPct: 100, SValidPing: 65535, SValidHup: 1}) {
		t.Errorf("retry a = %+v", a)
	}
	if !reflect.DeepEqual(b, &Retry{Name: "b", JitterPct: 30}) {
		t.Errorf("retry b = %+v", b)
	}
	if len(p.Certs) != 3 || p.Certs[1].Kind != KindCertificate || p.Certs[2].Kind != KindPrivateKey || string(p.Certs[0].DER) != string(p.Certs[1].DER) {
		t.Errorf("certs = %+v", p.Certs)
	}
	var stores []string
	for _, ts := range p.TrustStores {
		stores = append(stores, ts.Name+":"+itoa(len(ts.Stack)))
	}
	if strings.Join(stores, ",") != "A:2,B:1,C:1" {
		t.Errorf("trust stores = %v", stores)
	}
	if p.TrustStores[0].Stack[0].Name != "c1" || p.TrustStores[0].Stack[1].Name != "c2" {
		t.Error("stack order not kept")
	}
	n1, n2, n3 := p.Auth[0], p.Auth[1], p.Auth[2]
	if n1.Type != AuthLWA || n1.TypeName != "lwa" || n1.Blob != 3 || n1.Streamtype != p.Streamtypes[0] {
		t.Errorf("auth n1 = %+v", n1)
	}
	if n2.Type != AuthJWT || n3.Type != AuthToken || n3.TypeName != "" {
		t.Errorf("auth n2/n3 = %+v %+v", n2, n3)
	}
	if m := p.Metrics[0]; *m != (Metrics{Name: "m", USSchedule: 9223372036854775807, USHalflife: 4294967295, MinOutlier: 255, Report: "a*, b?"}) {
		t.Errorf("metrics = %+v", m)
	}
}

func TestEmptyPolicy(t *testing.T) {
	for _, s := range []string{"{}", " \n# c\n{ } # end", "\ufeff{}"} {
		p, diags := mustParse(t, pol(s), Options{Strict: true})
		if len(diags) != 0 || len(p.Streamtypes) != 0 || p.SchemaVersion != 1 {
			t.Errorf("%q: %+v%s", s, p, diagsText(diags))
		}
	}
}

func TestTemplateExpand(t *testing.T) {
	_, code, _ := compileTemplate("a${x}", func(string) int { return -1 })
	if code != CodeUndeclaredMetadata {
		t.Errorf("code = %q", code)
	}
	tm, code, msg := compileTemplate("$a${x}${yy}$", func(n string) int { return map[string]int{"x": 0, "yy": 1}[n] })
	if code != "" {
		t.Fatal(msg)
	}
	vals := []string{"1", "22"}
	if got := tm.Expand(func(i int) string { return vals[i] }); got != "$a122$" {
		t.Errorf("Expand = %q", got)
	}
	if !tm.HasSubstitutions() {
		t.Error("HasSubstitutions = false")
	}
	var nilT *Template
	if nilT.Expand(nil) != "" || nilT.HasSubstitutions() {
		t.Error("nil template")
	}
	lit, _, _ := compileTemplate("plain", nil)
	if lit.Expand(nil) != "plain" {
		t.Error("literal template")
	}
	one, _, _ := compileTemplate("${x}", func(string) int { return 0 })
	if one.Expand(func(int) string { return "v" }) != "v" {
		t.Error("single substitution")
	}
	allocs := testing.AllocsPerRun(100, func() { tm.Expand(func(i int) string { return vals[i] }) })
	if allocs > 1 {
		t.Errorf("Expand allocates %v times, want <= 1", allocs)
	}
}
