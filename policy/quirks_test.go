package policy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"
)

// One test per parser row of docs/lws-differences.md (P01..P53), named by its
// stable ID. Rows about overlays and generation are also covered in depth by
// overlay_test.go and gen_test.go.

// expectCode parses s and requires a diagnostic with code.
func expectCode(t *testing.T, s string, code Code) Diagnostic {
	t.Helper()
	_, diags, _ := Parse([]byte(pol(s)), Options{})
	got := withCode(diags, code)
	if len(got) == 0 {
		t.Fatalf("no %s diagnostic; got:%s", code, diagsText(diags))
	}
	return got[0]
}

// expectNoEffectOnly parses s and requires no diagnostics but no-effect
// warnings (metrics policies are stored without effect).
func expectNoEffectOnly(t *testing.T, s string) *Policy {
	t.Helper()
	p, _ := mustParseNoEffect(t, pol(s))
	return p
}

// expectClean parses s in strict mode and requires no diagnostics.
func expectClean(t *testing.T, s string) *Policy {
	t.Helper()
	p, diags := mustParse(t, pol(s), Options{Strict: true})
	if len(diags) != 0 {
		t.Fatalf("diagnostics:%s", diagsText(diags))
	}
	return p
}

func h1(name, extra string) string {
	return `"` + name + `": {"endpoint": "e.test", "http_method": "GET"` + extra + `}`
}

func TestQuirk_P01_TruncatedIsAnError(t *testing.T) {
	expectCode(t, `{"s": [{"x": {"endpoint": "e"}}]`, CodeTruncated)
}

func TestQuirk_P02_MismatchedClosersAreErrors(t *testing.T) {
	if d := expectCode(t, `{"s": [1}}`, CodeSyntax); !strings.Contains(d.Msg, "'}' cannot close an array") {
		t.Error(d)
	}
	if d := expectCode(t, `{"a": {"b": 1]]`, CodeSyntax); !strings.Contains(d.Msg, "']' cannot close an object") {
		t.Error(d)
	}
}

func TestQuirk_P03_TrailingDataIsAnError(t *testing.T) {
	expectCode(t, "{}\n<html>", CodeTrailingData)
	expectClean(t, "{}\n# only a comment\n\n")
}

func TestQuirk_P04_CommentsAndTrailingArrayCommaKept(t *testing.T) {
	expectClean(t, "# c\n{\"s\": [{"+h1("x", `, "metadata": [{"a": ""},]`)+"}, # c\n]}")
	expectCode(t, `{"release": "r",}`, CodeSyntax)
}

func TestQuirk_P05_NeverAFileName(t *testing.T) {
	expectClean(t, "\ufeff \n\t{}")
	expectCode(t, "policy.json", CodeSyntax)
	expectCode(t, "<!DOCTYPE html><html></html>", CodeSyntax)
}

func TestQuirk_P06_UnknownStreamtypeKeyCreatesNothing(t *testing.T) {
	p, diags := mustParse(t, pol(`{"s": [{"x": {"endpoint": "e", "bogus": {"port": 1}, "http_method": "GET", "port": 443}}]}`), Options{})
	if len(p.Streamtypes) != 1 || p.Streamtypes[0].Port != 443 || len(withCode(diags, CodeUnknownKey)) != 1 {
		t.Errorf("%+v%s", p.Streamtypes, diagsText(diags))
	}
	p, diags = mustParse(t, pol(`{"retry": [{"r": {"conceal": 1, "extra": 5, "jitterpc": 4}}]}`), Options{})
	if len(p.Retry) != 1 || p.Retry[0].JitterPct != 4 || len(withCode(diags, CodeUnknownKey)) != 1 {
		t.Errorf("%+v%s", p.Retry, diagsText(diags))
	}
}

func TestQuirk_P07_UnknownTopLevelKeyWarns(t *testing.T) {
	if d := expectCode(t, `{"polcy": 1}`, CodeUnknownKey); d.Severity != SeverityWarning {
		t.Error(d)
	}
}

func TestQuirk_P08_BackoffKeepsAllEntries(t *testing.T) {
	p := expectClean(t, `{"retry": [{"r": {"backoff": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}}]}`)
	if len(p.Retry[0].Backoff) != 10 || p.Retry[0].Backoff[9] != 10 {
		t.Error(p.Retry[0].Backoff)
	}
}

func TestQuirk_P09_BackoffUpTo64(t *testing.T) {
	list := strings.TrimSuffix(strings.Repeat("1,", 64), ",")
	p := expectClean(t, `{"retry": [{"r": {"backoff": [`+list+`]}}]}`)
	if len(p.Retry[0].Backoff) != 64 {
		t.Error(len(p.Retry[0].Backoff))
	}
	expectCode(t, `{"retry": [{"r": {"backoff": [`+list+`,1]}}]}`, CodeTooMany)
}

func TestQuirk_P10_ReferencesMatchExactly(t *testing.T) {
	expectCode(t, `{"retry": [{"default": {}}], "s": [{`+h1("x", `, "retry": "def"`)+`}]}`, CodeUnknownRef)
	expectCode(t, `{"certs": [{"c": "`+testCertB64+`"}], "trust_stores": [{"ts_long": ["c"]}], "s": [{`+h1("x", `, "tls": true, "tls_trust_store": "ts"`)+`}]}`, CodeUnknownRef)
	expectCode(t, `{"certs": [{"cert1": "`+testCertB64+`"}], "trust_stores": [{"ts": ["cert"]}]}`, CodeUnknownRef)
}

func TestQuirk_P11_ReferencesPointForward(t *testing.T) {
	p := expectClean(t, `{"s": [{`+h1("x", `, "retry": "r", "tls": true, "tls_trust_store": "ts"`)+`}],
		"trust_stores": [{"stack": ["c"], "name": "ts"}], "certs": [{"c": "`+testCertB64+`"}], "retry": [{"r": {}}]}`)
	if p.Streamtypes[0].Retry == nil || p.Streamtypes[0].TrustStore == nil {
		t.Error("forward references not resolved")
	}
}

func TestQuirk_P12_ReadmeTrustStoreShape(t *testing.T) {
	p := expectClean(t, `{"certs": [{"c": "`+testCertB64+`"}], "trust_stores": [{"a": ["c"], "b": ["c"]}]}`)
	if len(p.TrustStores) != 2 || p.TrustStores[1].Name != "b" {
		t.Error(p.TrustStores)
	}
}

func TestQuirk_P13_StackBeforeName(t *testing.T) {
	p := expectClean(t, `{"certs": [{"c": "`+testCertB64+`"}], "trust_stores": [{"stack": ["c"], "name": "ts"}]}`)
	if p.TrustStores[0].Name != "ts" || len(p.TrustStores[0].Stack) != 1 {
		t.Error(p.TrustStores[0])
	}
}

func TestQuirk_P14_EmptyStackIsAnError(t *testing.T) {
	expectCode(t, `{"trust_stores": [{"name": "ts", "stack": []}]}`, CodeEmptyStack)
}

func TestQuirk_P15_NoTrustStoreLimit(t *testing.T) {
	var certs, names []string
	for i := 0; i < 10; i++ {
		certs = append(certs, fmt.Sprintf(`"c%d": "%s"`, i, testCertB64))
		names = append(names, fmt.Sprintf(`"c%d"`, i))
	}
	p := expectClean(t, `{"certs": [{`+strings.Join(certs, ",")+`}], "trust_stores": [{"ts": [`+strings.Join(names, ",")+`]}]}`)
	if len(p.TrustStores[0].Stack) != 10 {
		t.Error(len(p.TrustStores[0].Stack))
	}
}

func TestQuirk_P16_AllCertsOfOneObjectKept(t *testing.T) {
	p := expectClean(t, `{"certs": [{"a": "`+testCertB64+`", "b": "`+testKeyB64+`", "c": "`+testCertB64+`"}]}`)
	if len(p.Certs) != 3 || len(p.Certs[0].DER) == 0 || len(p.Certs[1].DER) == 0 {
		t.Error(p.Certs)
	}
}

func TestQuirk_P17_CertsDecodedAndParsedWithoutSizeLimit(t *testing.T) {
	if d := expectCode(t, `{"certs": [{"broken": "not*base64"}]}`, CodeBadCert); !strings.Contains(d.Msg, `"broken"`) {
		t.Error(d)
	}
	big := bigCert(t)
	if len(big) <= 3072 {
		t.Fatalf("test certificate is only %d bytes", len(big))
	}
	p := expectClean(t, `{"certs": [{"big": "`+base64.StdEncoding.EncodeToString(big)+`"}]}`)
	if p.Certs[0].Certificate == nil || len(p.Certs[0].DER) != len(big) {
		t.Error("large certificate not kept")
	}
}

// bigCert returns a self-signed certificate larger than 3072 bytes.
func bigCert(t *testing.T) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "big.test"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<33, 0)}
	for i := 0; i < 200; i++ {
		tmpl.DNSNames = append(tmpl.DNSNames, fmt.Sprintf("host%03d.big.test", i))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestQuirk_P18_CertUsableByManyServers(t *testing.T) {
	srv := `{"server": true, "port": %d, "tls": true, "server_cert": "c", "server_key": "k"}`
	p := expectClean(t, `{"certs": [{"c": "`+testCertB64+`", "k": "`+testKeyB64+`"}], "s": [{"a": `+fmt.Sprintf(srv, 1)+`, "b": `+fmt.Sprintf(srv, 2)+`}]}`)
	if p.Streamtypes[0].ServerCert != p.Streamtypes[1].ServerCert || p.Streamtypes[1].ServerKey == nil {
		t.Error("cert not shared")
	}
}

func TestQuirk_P19_StringsOfAnyLength(t *testing.T) {
	long := strings.Repeat("x", 1000)
	p := expectClean(t, `{"s": [{`+h1("x", `, "http_url": "`+long+`"`)+`}]}`)
	if p.Streamtypes[0].HTTPURL != long {
		t.Error("string truncated")
	}
}

func TestQuirk_P20_LongMetadataMappings(t *testing.T) {
	long := "x-" + strings.Repeat("h", 400) + ":"
	p := expectClean(t, `{"s": [{`+h1("x", `, "metadata": [{"a": "`+long+`"}, {"b": ""}]`)+`}]}`)
	if md := p.Streamtypes[0].Metadata; len(md) != 2 || md[0].HeaderRaw != long {
		t.Error(md)
	}
}

func TestQuirk_P21_LongStreamtypeNames(t *testing.T) {
	name := strings.Repeat("n", 300)
	p, diags := mustParse(t, pol(`{"s": [{`+h1(name, "")+`}]}`), Options{})
	if p.Streamtype(name) == nil || len(diags) != 1 || diags[0].Code != CodeProxyLimit {
		t.Errorf("%s", diagsText(diags))
	}
}

func TestQuirk_P22_NumbersAreExact(t *testing.T) {
	if d := expectCode(t, `{"s": [{`+h1("x", `, "port": "443"`)+`}]}`, CodeCoerced); d.Severity != SeverityWarning {
		t.Error(d)
	}
	expectCode(t, `{"s": [{`+h1("x", `, "port": 443.9`)+`}]}`, CodeNonInteger)
	expectCode(t, `{"s": [{`+h1("x", `, "port": 1e3`)+`}]}`, CodeNonInteger)
	expectCode(t, `{"s": [{`+h1("x", `, "attr_priority": -1`)+`}]}`, CodeRange)
	expectCode(t, `{"s": [{`+h1("x", `, "port": 65536`)+`}]}`, CodeRange)
}

func TestQuirk_P23_BooleansAssignedAndCleared(t *testing.T) {
	p, diags := mustParse(t, pol(`{"s": [{`+h1("x", `, "tls": true, "tls": false, "nailed_up": 1, "perf": 0`)+`}]}`), Options{})
	st := p.Streamtypes[0]
	if st.TLS || !st.NailedUp || st.Perf || len(withCode(diags, CodeCoerced)) != 2 {
		t.Errorf("%+v%s", st, diagsText(diags))
	}
	expectCode(t, `{"s": [{`+h1("x", `, "tls": "true"`)+`}]}`, CodeType)
}

func TestQuirk_P24_StringKeysRejectOtherTypes(t *testing.T) {
	for _, v := range []string{"true", "false", "null", "12"} {
		expectCode(t, `{"s": [{"x": {"endpoint": `+v+`}}]}`, CodeType)
	}
}

func TestQuirk_P25_DuplicateStreamtypeWarns(t *testing.T) {
	expectCode(t, `{"s": [{`+h1("x", "")+`}, {`+h1("x", `, "port": 2`)+`}]}`, CodeDuplicateName)
}

func TestQuirk_P26_SchemaVersionEnforced(t *testing.T) {
	if d := expectCode(t, `{"schema-version": 2}`, CodeSchemaVersion); d.Msg != "policy needs parser schema 2, this parser supports 1" {
		t.Error(d.Msg)
	}
}

func TestQuirk_P27_UndeclaredSubstitutionIsAnError(t *testing.T) {
	expectCode(t, `{"s": [{`+h1("x", `, "http_url": "a/${b}"`)+`}]}`, CodeUndeclaredMetadata)
}

func TestQuirk_P28_MultipartContentTypeAlias(t *testing.T) {
	p := expectClean(t, `{"s": [{`+h1("x", `, "http_multipart_content_type": "a/b"`)+`}]}`)
	if p.Streamtypes[0].HTTPMimeContentType != "a/b" {
		t.Error(p.Streamtypes[0].HTTPMimeContentType)
	}
}

func TestQuirk_P29_AuthHexify(t *testing.T) {
	p := expectClean(t, `{"s": [{`+h1("x", `, "http_auth_header": "authorization:", "auth_hexify": true`)+`}]}`)
	if !p.Streamtypes[0].AuthHexify {
		t.Error("auth_hexify not set")
	}
}

func TestQuirk_P30_OptionsParsed(t *testing.T) {
	p := expectClean(t, `{"s": [{"srv": {"server": true, "port": 1, "options": [{"a": "1"}, {"b": "2"}]}}]}`)
	if v, ok := p.Streamtypes[0].Option("b"); !ok || v != "2" || len(p.Streamtypes) != 1 {
		t.Error(p.Streamtypes[0].Options)
	}
}

func TestQuirk_P31_MetricsMemberOrderFree(t *testing.T) {
	p := expectNoEffectOnly(t, `{"metrics": [{"report": "x", "us_schedule": 5, "name": "m"}]}`)
	if p.Metrics[0].Name != "m" || p.Metrics[0].USSchedule != 5 {
		t.Error(p.Metrics[0])
	}
}

func TestQuirk_P32_EveryKeyAlwaysParsed(t *testing.T) {
	p := expectNoEffectOnly(t, `{"auth": [{"name": "s", "type": "sigv4"}], "metrics": [{"name": "m"}],
		"s": [{`+h1("x", `, "use_auth": "s", "metadata": [{"r": "", "v": ""}], "aws_region": "r", "aws_service": "v"`)+`}]}`)
	if p.Streamtypes[0].AWSRegion != "r" || len(p.Metrics) != 1 {
		t.Error("keys dropped")
	}
}

func TestQuirk_P33_BlobRange(t *testing.T) {
	expectCode(t, `{"auth": [{"name": "a", "blob": 4}]}`, CodeRange)
}

func TestQuirk_P34_AuthStreamtypeChecked(t *testing.T) {
	expectCode(t, `{"auth": [{"name": "a", "streamtype": "missing"}]}`, CodeUnknownRef)
}

func TestQuirk_P35_HTTPAndMQTTFieldsSeparate(t *testing.T) {
	p, diags := mustParse(t, pol(`{"s": [{"m": {"protocol": "mqtt", "endpoint": "b", "mqtt_topic": "t", "http_method": "POST"}}]}`), Options{})
	st := p.Streamtypes[0]
	if st.MQTTTopic != "t" || st.HTTPMethod != "POST" || len(withCode(diags, CodeNotApplicable)) != 1 {
		t.Errorf("%+v%s", st, diagsText(diags))
	}
}

func TestQuirk_P36_HeaderNamesKeptForCaseInsensitiveUse(t *testing.T) {
	p := expectClean(t, `{"s": [{`+h1("x", `, "metadata": [{"ct": "Content-Type:"}]`)+`}]}`)
	if h := p.Streamtypes[0].Metadata[0].Header; !strings.EqualFold(h, "content-type") {
		t.Error(h)
	}
}

func TestQuirk_P37_MetadataDeclarationOrder(t *testing.T) {
	p := expectClean(t, `{"s": [{`+h1("x", `, "metadata": [{"c": "", "a": ""}, {"b": ""}]`)+`}]}`)
	var names []string
	for _, m := range p.Streamtypes[0].Metadata {
		names = append(names, m.Name)
	}
	if strings.Join(names, "") != "cab" {
		t.Error(names)
	}
}

func TestQuirk_P38_RespMapUnlimitedAndUserStatesOnly(t *testing.T) {
	var entries []string
	for i := 0; i < 20; i++ {
		entries = append(entries, fmt.Sprintf(`{"%d": %d}`, 400+i, 2000+i))
	}
	p := expectClean(t, `{"s": [{`+h1("x", `, "http_resp_map": [`+strings.Join(entries, ",")+`]`)+`}]}`)
	if len(p.Streamtypes[0].HTTPRespMap) != 20 {
		t.Error(len(p.Streamtypes[0].HTTPRespMap))
	}
	expectCode(t, `{"s": [{`+h1("x", `, "http_resp_map": [{"404": 7}]`)+`}]}`, CodeRange)
}

func quirkBase(t *testing.T) *Policy {
	p, _ := mustParse(t, pol(`{"retry": [{"r": {}}], "s": [{`+h1("captive_portal_detect", `, "nailed_up": true, "metadata": [{"a": ""}]`)+`, `+h1("cpd2", "")+`}]}`), Options{})
	return p
}

func TestQuirk_P39_OverlayExactName(t *testing.T) {
	p, _, err := ApplyOverlay(quirkBase(t), []byte(`{"s": [{"captive": {"endpoint": "x", "http_method": "GET"}}]}`), Options{})
	if err != nil || p.Streamtype("captive_portal_detect").Endpoint != "e.test" || p.Streamtype("captive") == nil {
		t.Errorf("%v", err)
	}
}

func TestQuirk_P40_OverlayMakesANewValue(t *testing.T) {
	base := quirkBase(t)
	p, _, err := ApplyOverlay(base, []byte(`{"s": [{"captive_portal_detect": {"port": 9}}]}`), Options{})
	if err != nil || base.Streamtypes[0].Port != 0 || p.Streamtypes[0].Port != 9 {
		t.Errorf("%v", err)
	}
}

func TestQuirk_P41_OverlayReplacesMetadata(t *testing.T) {
	p, _, err := ApplyOverlay(quirkBase(t), []byte(`{"s": [{"captive_portal_detect": {"metadata": [{"b": ""}]}}]}`), Options{})
	if err != nil || len(p.Streamtypes[0].Metadata) != 1 || p.Streamtypes[0].Metadata[0].Name != "b" {
		t.Errorf("%v", err)
	}
}

func TestQuirk_P42_OverlayReferencesResolveAgainstBase(t *testing.T) {
	p, _, err := ApplyOverlay(quirkBase(t), []byte(`{"s": [{"captive_portal_detect": {"retry": "r", "rideshare": "cpd2"}}]}`), Options{})
	if err != nil || p.Streamtypes[0].Retry != p.Retry[0] || p.Streamtypes[0].Rideshare != p.Streamtypes[1] {
		t.Errorf("%v", err)
	}
}

func TestQuirk_P43_OverlayAddsStreamtypes(t *testing.T) {
	p, _, err := ApplyOverlay(quirkBase(t), []byte(`{"s": [{`+h1("added", "")+`}]}`), Options{})
	if err != nil || len(p.Streamtypes) != 3 || p.Streamtypes[2].Name != "added" {
		t.Errorf("%v", err)
	}
}

func TestQuirk_P44_OverlayClearsBooleans(t *testing.T) {
	p, _, err := ApplyOverlay(quirkBase(t), []byte(`{"s": [{"captive_portal_detect": {"nailed_up": false}}]}`), Options{})
	if err != nil || p.Streamtypes[0].NailedUp {
		t.Errorf("%v", err)
	}
}

func TestQuirk_P45_OverlayOtherSectionsRefused(t *testing.T) {
	_, diags, err := ApplyOverlay(quirkBase(t), []byte(`{"retry": [{"x": {}}]}`), Options{})
	if err == nil || len(withCode(diags, CodeOverlaySection)) != 1 {
		t.Errorf("%v%s", err, diagsText(diags))
	}
}

func TestQuirk_P46_ErrorsAreReturned(t *testing.T) {
	p, diags, err := Parse([]byte(`{"s": [{"x": {"port": "x"}}]}`), Options{})
	if p != nil || err == nil || len(diags) == 0 {
		t.Error("no error value")
	}
}

func TestQuirk_P47_ServerTLSCheckedAtLoad(t *testing.T) {
	expectCode(t, `{"s": [{"srv": {"server": true, "port": 1, "tls": true}}]}`, CodeMissingKey)
	// TestCertEncodings covers key-mismatch.
}

func TestQuirk_P48_P49_P50_GenerateEverything(t *testing.T) {
	p := expectClean(t, `{"certs": [{"c": "`+testCertB64+`", "k": "`+testKeyB64+`"}], "trust_stores": [{"b": ["c"]}, {"a": ["c"]}],
		"s": [{"my-raw.st": {"protocol": "raw", "endpoint": "e", "port": 1, "proxy_buflen": 9, "client_buflen": 8, "attr_priority": 2},
		"srv": {"server": true, "port": 1, "tls": true, "server_cert": "c", "server_key": "k", "options": [{"o": "v"}]}}]}`)
	src, err := Generate(p, GenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	for _, want := range []string{"ProxyBuflen:  9", "ClientBuflen: 8", "AttrPriority: 2", "st_my_raw_st := ", "Protocol: policy.Raw", `Options: []policy.Option{`, "st_srv.ServerKey = cert_k"} {
		if !strings.Contains(s, want) {
			t.Errorf("generated source lacks %q", want)
		}
	}
	if strings.Index(s, "ts_b := ") > strings.Index(s, "ts_a := ") {
		t.Error("trust store order reversed")
	}
}

func TestQuirk_P51_JitterZeroMeansNone(t *testing.T) {
	p := expectClean(t, `{"retry": [{"z": {"jitterpc": 0}}, {"d": {}}]}`)
	if p.Retry[0].JitterPct != 0 || p.Retry[1].JitterPct != 30 {
		t.Error(p.Retry)
	}
}

func TestQuirk_P52_PerStreamtypeSOCKS5Applied(t *testing.T) {
	p := expectClean(t, `{"s": [{`+h1("x", `, "via-socks5": "p.test:1080"`)+`}]}`)
	if p.Streamtypes[0].ViaSOCKS5 != "p.test:1080" {
		t.Error(p.Streamtypes[0].ViaSOCKS5)
	}
}

func TestQuirk_P53_ReadmeExamplePolicy(t *testing.T) {
	_, diags, _ := Parse([]byte(pol(`{"certs": [{"c": "`+testCertB64+`"}], "trust_stores": [{"ts": ["c"]}],
		"s": [{"mintest": {"endpoint": "e.test", "protocol": "h1get", "aux": "x", "tls": true, "tls_trust_store": "ts"}}]}`)), Options{})
	if len(withCode(diags, CodeUnknownKey)) != 1 || len(withCode(diags, CodeFormat)) != 1 || len(withCode(diags, CodeUnknownRef)) != 0 {
		t.Errorf("%s", diagsText(diags))
	}
}
