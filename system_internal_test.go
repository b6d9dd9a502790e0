package ss

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/securestreams/ss/policy"
)

func TestCompareRelease(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"2026.9", "2026.10", -1},
		{"2026.10", "2026.9", 1},
		{"1.2-rc1", "1.2-rc2", -1},
		{"v3", "v3", 0},
		{"007", "7", 0},
		{"", "1", -1},
		{"1", "", 1},
		{"1.2", "1.2.1", -1},
		{"99999999999999999999999", "100000000000000000000000", -1}, // beyond int64
	} {
		if got := compareRelease(c.a, c.b); got != c.want {
			t.Errorf("compareRelease(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestVerifyPolicySignatureForms(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	body := []byte(`{"release": "1"}`)
	sig := ed25519.Sign(priv, body)
	for name, text := range map[string][]byte{
		"raw":        sig,
		"base64":     []byte(base64.StdEncoding.EncodeToString(sig) + "\n"),
		"base64 url": []byte(base64.RawURLEncoding.EncodeToString(sig)),
		"hex":        []byte(hex.EncodeToString(sig)),
	} {
		if err := verifyPolicy(body, text, []ed25519.PublicKey{pub}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, text := range map[string][]byte{"empty": nil, "short": []byte("abcd"), "other body": []byte(base64.StdEncoding.EncodeToString(ed25519.Sign(priv, []byte("x"))))} {
		if err := verifyPolicy(body, text, []ed25519.PublicKey{pub}); !errors.Is(err, ErrPolicySignature) {
			t.Errorf("%s: %v, want ErrPolicySignature", name, err)
		}
	}
}

func TestSignatureStreamtype(t *testing.T) {
	p, _, err := policy.Parse([]byte(`{"s": [
		{"a": {"endpoint": "h.test", "http_method": "GET", "http_url": "p/${v}.json", "metadata": [{"v": ""}]}},
		{"b": {"endpoint": "https://h.test/x/policy.json", "http_method": "GET"}},
		{"c": {"endpoint": "h.test", "http_method": "GET", "http_url": "p.json?x=1"}}]}`), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := signatureStreamtype(p.Streamtype("a"))
	if err != nil || a.HTTPURL != "p/${v}.json.sig" || a.HTTPURLTmpl.Expand(func(int) string { return "7" }) != "p/7.json.sig" {
		t.Errorf("a: %v %q", err, a.HTTPURL)
	}
	if p.Streamtype("a").HTTPURL != "p/${v}.json" {
		t.Error("the policy's streamtype was modified")
	}
	if b, err := signatureStreamtype(p.Streamtype("b")); err != nil || b.Endpoint != "https://h.test/x/policy.json.sig" {
		t.Errorf("b: %v %+v", err, b)
	}
	if _, err := signatureStreamtype(p.Streamtype("c")); !errors.Is(err, ErrPolicySignature) {
		t.Errorf("c (query): %v", err)
	}
}

func TestProxyRoute(t *testing.T) {
	if addr, dial, err := proxyRoute("unix:@x", nil); err != nil || addr != "unix:@x" || dial != nil {
		t.Errorf("plain address: %q %v", addr, err)
	}
	addr, dial, err := proxyRoute("socks5://u:p@127.0.0.1:1080/tcp:10.0.0.1:9", nil)
	if err != nil || addr != "tcp:10.0.0.1:9" || dial == nil {
		t.Errorf("socks5: %q %v", addr, err)
	}
	if got := redactSOCKS("socks5://u:secret@h:1/tcp:a:1"); got != "socks5://u:***@h:1/tcp:a:1" {
		t.Errorf("redacted %q", got)
	}
}
