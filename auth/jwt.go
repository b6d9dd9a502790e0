package auth

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"time"
)

// JWT configures a jwt auth scheme (ss.AuthConfig.JWT): the device signs
// its own tokens, each with the claims iss, sub, aud, iat, exp, jti and any
// extra claims, signed with ES256 (P-256 key), RS256 (RSA key) or EdDSA
// (Ed25519 key). The token is placed in the scheme's slot like any other:
// sent in http_auth_header (with "Bearer " as http_auth_preamble) or used as
// the MQTT password. The scheme's refresher issues a new one before exp.
// The zero value signs with the key in the scheme's signing-key slot
// (Store.SetSigningKey) and uses the device serial as subject.
type JWT struct {
	// Key signs the tokens; nil: KeyFile, else the key in the scheme's
	// signing-key slot (auth[].blob).
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
