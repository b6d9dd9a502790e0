package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// ErrKey is wrapped when a JWT signing key cannot be used.
var ErrKey = errors.New("ss: auth: jwt key")

// JWT is the device-signed token provider: each Refresh issues a new JWT
// (claims iss, sub, aud, iat, exp, jti and any extra claims) signed with
// ES256 (P-256 key), RS256 (RSA key) or EdDSA (Ed25519 key). The token is
// placed in the scheme's slot like any other: sent in http_auth_header
// (with "Bearer " as http_auth_preamble) or used as the MQTT password. The
// refresher re-issues it before exp.
type JWT struct {
	Store *Store
	// Slot holds the signing key (Store.SetSigningKey) when Key and
	// KeyFile are not set.
	Slot int
	// Key signs the tokens; nil: KeyFile, else the key in Slot.
	Key crypto.Signer
	// KeyFile is a PEM private key (PKCS #8, SEC 1 "EC PRIVATE KEY" or
	// PKCS #1 "RSA PRIVATE KEY"), read at every issue.
	KeyFile string
	// Alg is "ES256", "RS256" or "EdDSA"; empty: chosen from the key.
	Alg string
	// Issuer, Subject and Audience are the iss, sub and aud claims; an
	// empty Subject is the device serial.
	Issuer, Subject string
	Audience        []string
	// Lifetime is exp − iat (default 1 h).
	Lifetime time.Duration
	// Claims are extra claims.
	Claims map[string]any
}

// DependsOn reports a change of the signing key slot (when the key comes
// from there) or of the device identity (the default subject).
func (j *JWT) DependsOn(ch Change) bool {
	if ch.Kind == KindDevice {
		return j.Subject == ""
	}
	return ch.Kind == KindSigningKey && ch.Slot == j.Slot && j.Key == nil && j.KeyFile == ""
}

// Refresh implements Provider: it issues a new token.
func (j *JWT) Refresh(ctx context.Context) (Token, error) {
	if err := ctx.Err(); err != nil {
		return Token{}, err
	}
	key, err := j.key()
	if err != nil {
		return Token{}, err
	}
	alg, err := algFor(key, j.Alg)
	if err != nil {
		return Token{}, err
	}
	now := time.Now().Truncate(time.Second)
	life := j.Lifetime
	if life <= 0 {
		life = time.Hour
	}
	var id [16]byte
	_, _ = rand.Read(id[:])
	sub := j.Subject
	if sub == "" && j.Store != nil {
		sub = j.Store.Device().Serial
	}
	b := jwt.NewBuilder().IssuedAt(now).Expiration(now.Add(life)).JwtID(hex.EncodeToString(id[:]))
	if j.Issuer != "" {
		b = b.Issuer(j.Issuer)
	}
	if sub != "" {
		b = b.Subject(sub)
	}
	if len(j.Audience) > 0 {
		b = b.Audience(j.Audience)
	}
	for k, v := range j.Claims {
		b = b.Claim(k, v)
	}
	t, err := b.Build()
	if err != nil {
		return Token{}, fmt.Errorf("ss: auth: jwt claims: %w", err)
	}
	signed, err := jwt.Sign(t, jwt.WithKey(alg, key))
	if err != nil {
		return Token{}, fmt.Errorf("%w: signing with %s: %w", ErrKey, alg, err)
	}
	return Token{Value: signed, Type: "bearer", Issued: now, Expiry: now.Add(life)}, nil
}

func (j *JWT) key() (crypto.Signer, error) {
	switch {
	case j.Key != nil:
		return j.Key, nil
	case j.KeyFile != "":
		pemBytes, err := os.ReadFile(j.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNoCredentials, err)
		}
		k, err := ParsePrivateKeyPEM(pemBytes)
		if err != nil {
			return nil, fmt.Errorf("%w (file %s)", err, j.KeyFile)
		}
		return k, nil
	}
	if j.Store != nil {
		if k := j.Store.SigningKey(j.Slot); k != nil {
			return k, nil
		}
	}
	return nil, fmt.Errorf("%w: no JWT signing key (Key, KeyFile or signing-key slot %d)", ErrNoCredentials, j.Slot)
}

// algFor picks the signature algorithm for key, checking a requested one.
func algFor(key crypto.Signer, want string) (jwa.SignatureAlgorithm, error) {
	var have jwa.SignatureAlgorithm
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return have, fmt.Errorf("%w: ECDSA curve %s (ES256 needs P-256)", ErrKey, k.Curve.Params().Name)
		}
		have = jwa.ES256()
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return have, fmt.Errorf("%w: RSA key of %d bits (at least 2048)", ErrKey, k.N.BitLen())
		}
		have = jwa.RS256()
	case ed25519.PrivateKey:
		have = jwa.EdDSA()
	default:
		return have, fmt.Errorf("%w: unsupported key type %T (expected ECDSA P-256, RSA or Ed25519)", ErrKey, key)
	}
	if want != "" && want != have.String() {
		return have, fmt.Errorf("%w: alg %q does not fit a %T key (use %s)", ErrKey, want, key, have)
	}
	return have, nil
}

// ParsePrivateKeyPEM parses the first private key block of a PEM file:
// PKCS #8 "PRIVATE KEY", SEC 1 "EC PRIVATE KEY" or PKCS #1 "RSA PRIVATE
// KEY".
func ParsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	for {
		var blk *pem.Block
		blk, data = pem.Decode(data)
		if blk == nil {
			return nil, fmt.Errorf("%w: no PEM private key block", ErrKey)
		}
		var k any
		var err error
		switch blk.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(blk.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s block: %w", ErrKey, blk.Type, err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%w: %T cannot sign", ErrKey, k)
		}
		return s, nil
	}
}
