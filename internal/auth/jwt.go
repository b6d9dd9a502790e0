package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"fmt"
	"os"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/securestreams/ss/auth"
)

// JWT is the jwt scheme's token provider: each Refresh issues a new token
// as its auth.JWT configuration says, signed with the configured key or
// the one in the signing-key slot Slot of Store.
type JWT struct {
	auth.JWT
	Store *Store
	// Slot holds the signing key (Store.SetSigningKey) when Key and
	// KeyFile are not set.
	Slot int
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
		return Token{}, fmt.Errorf("%w: signing with %s: %w", errKey, alg, err)
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
			return nil, fmt.Errorf("%w: %w", errNoCredentials, err)
		}
		k, err := auth.ParsePrivateKeyPEM(pemBytes)
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
	return nil, fmt.Errorf("%w: no JWT signing key (Key, KeyFile or signing-key slot %d)", errNoCredentials, j.Slot)
}

// algFor picks the signature algorithm for key, checking a requested one.
func algFor(key crypto.Signer, want string) (jwa.SignatureAlgorithm, error) {
	var have jwa.SignatureAlgorithm
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return have, fmt.Errorf("%w: ECDSA curve %s (ES256 needs P-256)", errKey, k.Curve.Params().Name)
		}
		have = jwa.ES256()
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return have, fmt.Errorf("%w: RSA key of %d bits (at least 2048)", errKey, k.N.BitLen())
		}
		have = jwa.RS256()
	case ed25519.PrivateKey:
		have = jwa.EdDSA()
	default:
		return have, fmt.Errorf("%w: unsupported key type %T (expected ECDSA P-256, RSA or Ed25519)", errKey, key)
	}
	if want != "" && want != have.String() {
		return have, fmt.Errorf("%w: alg %q does not fit a %T key (use %s)", errKey, want, key, have)
	}
	return have, nil
}
