package auth

import (
	"github.com/securestreams/ss/auth"

	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

func genKeys(t *testing.T) map[string]crypto.Signer {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]crypto.Signer{"ES256": ec, "RS256": rk, "EdDSA": ed}
}

// Each algorithm's token verifies with jwx and carries the claims.
func TestJWTAlgorithmsVerifyWithJWX(t *testing.T) {
	s := newStore(t)
	if err := s.SetDevice(ctxT(t), Device{Serial: "dev-42"}); err != nil {
		t.Fatal(err)
	}
	algs := map[string]jwa.SignatureAlgorithm{"ES256": jwa.ES256(), "RS256": jwa.RS256(), "EdDSA": jwa.EdDSA()}
	for name, key := range genKeys(t) {
		t.Run(name, func(t *testing.T) {
			p := &JWT{Store: s, JWT: auth.JWT{Key: key, Issuer: "iss-x", Audience: []string{"aud-1"}, Lifetime: 10 * time.Minute, Claims: map[string]any{"scope": "telemetry"}}}
			tok, err := p.Refresh(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := jwt.Parse(tok.Value, jwt.WithKey(algs[name], key.Public()), jwt.WithAudience("aud-1"), jwt.WithIssuer("iss-x"))
			if err != nil {
				t.Fatalf("jwx rejects the token: %v", err)
			}
			sub, _ := parsed.Subject()
			jti, _ := parsed.JwtID()
			iat, _ := parsed.IssuedAt()
			exp, _ := parsed.Expiration()
			var scope string
			_ = parsed.Get("scope", &scope)
			if sub != "dev-42" || len(jti) != 32 || exp.Sub(iat) != 10*time.Minute || scope != "telemetry" || !exp.Equal(tok.Expiry) {
				t.Fatalf("claims sub=%q jti=%q iat=%v exp=%v scope=%q (token expiry %v)", sub, jti, iat, exp, scope, tok.Expiry)
			}
			// A different key must not verify it.
			other := genKeys(t)[name]
			if _, err := jwt.Parse(tok.Value, jwt.WithKey(algs[name], other.Public())); err == nil {
				t.Fatal("token verified with the wrong key")
			}
		})
	}
}

// An independent check: the ES256 signature verifies with crypto/ecdsa over
// the JWS signing input, and the header names ES256.
func TestJWTES256VerifiesWithCryptoECDSA(t *testing.T) {
	key := genKeys(t)["ES256"].(*ecdsa.PrivateKey)
	tok, err := (&JWT{JWT: auth.JWT{Key: key, Subject: "s"}}).Refresh(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(string(tok.Value), ".")
	if len(parts) != 3 {
		t.Fatalf("%d parts", len(parts))
	}
	hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var h struct{ Alg, Typ string }
	if err := json.Unmarshal(hdr, &h); err != nil || h.Alg != "ES256" {
		t.Fatalf("header %s (%v)", hdr, err)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		t.Fatalf("signature %d bytes (%v)", len(sig), err)
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	r, sv := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(&key.PublicKey, digest[:], r, sv) {
		t.Fatal("crypto/ecdsa rejects the signature")
	}
	digest[0] ^= 1
	if ecdsa.Verify(&key.PublicKey, digest[:], r, sv) {
		t.Fatal("crypto/ecdsa accepts a different signing input")
	}
}

// Keys come from PEM files (PKCS #8 and SEC 1) and from the store's slot;
// a wrong alg or a missing key is a clear error.
func TestJWTKeySources(t *testing.T) {
	keys := genKeys(t)
	dir := t.TempDir()
	ec := keys["ES256"].(*ecdsa.PrivateKey)
	sec1, _ := x509.MarshalECPrivateKey(ec)
	pk8, _ := x509.MarshalPKCS8PrivateKey(keys["EdDSA"])
	files := map[string][]byte{
		"ec.pem": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}),
		"ed.pem": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk8}),
	}
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := (&JWT{JWT: auth.JWT{KeyFile: filepath.Join(dir, "ec.pem")}}).Refresh(context.Background()); err != nil {
		t.Fatal("SEC 1 file:", err)
	}
	tok, err := (&JWT{JWT: auth.JWT{KeyFile: filepath.Join(dir, "ed.pem")}}).Refresh(context.Background())
	if err != nil {
		t.Fatal("PKCS #8 file:", err)
	}
	if _, err := jwt.Parse(tok.Value, jwt.WithKey(jwa.EdDSA(), keys["EdDSA"].Public())); err != nil {
		t.Fatal(err)
	}
	s := newStore(t)
	p := &JWT{Store: s, Slot: 3}
	if _, err := p.Refresh(context.Background()); !errors.Is(err, errNoCredentials) {
		t.Fatalf("no key: %v", err)
	}
	if err := s.SetSigningKey(ctxT(t), 3, keys["RS256"]); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Refresh(context.Background()); err != nil {
		t.Fatal("slot key:", err)
	}
	if _, err := (&JWT{JWT: auth.JWT{Key: ec, Alg: "RS256"}}).Refresh(context.Background()); !errors.Is(err, errKey) || !strings.Contains(err.Error(), "ES256") {
		t.Fatalf("wrong alg: %v", err)
	}
	if _, err := (&JWT{JWT: auth.JWT{KeyFile: filepath.Join(dir, "missing.pem")}}).Refresh(context.Background()); !errors.Is(err, errNoCredentials) {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := auth.ParsePrivateKeyPEM([]byte("nothing")); !errors.Is(err, errKey) {
		t.Fatalf("not PEM: %v", err)
	}
}

// A refresher re-issues a JWT before its exp.
func TestJWTReissuedBeforeExp(t *testing.T) {
	s := newStore(t)
	r, err := NewRefresher(RefresherConfig{Scheme: "jwt", Slot: 0, Store: s, Tuning: Tuning{MinInterval: 10 * time.Millisecond, RefreshAt: 0.5},
		Provider: &JWT{JWT: auth.JWT{Key: genKeys(t)["ES256"], Subject: "d", Lifetime: 2 * time.Second}}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	waitOpen(t, r, 5*time.Second)
	first := s.Token(0)
	deadline := time.Now().Add(5 * time.Second)
	for string(s.Token(0).Value) == string(first.Value) {
		if time.Now().After(deadline) {
			t.Fatal("never re-issued")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if now := time.Now(); !now.Before(first.Expiry) {
		t.Fatalf("re-issued at %v, after the first token's exp %v", now, first.Expiry)
	}
}
