package auth

import (
	"context"
	"crypto"
	"crypto/tls"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Store is a runtime's credential store (ss.Runtime.Blobs): Slots slots of
// each kind, numbered like policy auth[].blob and client_cert. One actor
// applies the updates in the order they were made; every connection attempt
// reads the newest values without locking, and a token refresher whose
// credentials change refreshes at once. Each setter returns once the value
// is in use, or fails with an error wrapping ErrSlot (slot outside
// 0..Slots-1) or ErrClosed (the runtime was closed). Secrets are never
// logged. All methods are safe from any goroutine.
type Store interface {
	// SetToken stores the auth token of slot: sent in http_auth_header (after
	// http_auth_preamble) by token schemes, the MQTT password of use_auth
	// streamtypes. lwa and jwt schemes keep their slot's token fresh.
	SetToken(ctx context.Context, slot int, tok Token) error
	// SetLWA stores the Login With Amazon refresh credentials of slot.
	SetLWA(ctx context.Context, slot int, c LWACredentials) error
	// SetSigningKey stores the JWT signing key of slot (an
	// *ecdsa.PrivateKey on P-256, an *rsa.PrivateKey of at least 2048 bits
	// or an ed25519.PrivateKey).
	SetSigningKey(ctx context.Context, slot int, key crypto.Signer) error
	// SetClientCert stores the TLS client certificate (with its key) of
	// slot, for streamtypes with client_cert.
	SetClientCert(ctx context.Context, slot int, cert *tls.Certificate) error
	// SetCredentials stores the SigV4 credential provider of slot (for
	// example StaticCredentials, EnvCredentials or ProfileCredentials),
	// wrapped in aws.NewCredentialsCache unless it already is one; nil
	// clears the slot.
	SetCredentials(ctx context.Context, slot int, p aws.CredentialsProvider) error
	// SetDevice stores the device identity (ss.Config.Device is the initial
	// one).
	SetDevice(ctx context.Context, d Device) error
	// Token returns the token in slot (zero when unset or out of range).
	Token(slot int) Token
	// Device returns the device identity.
	Device() Device
}

// Refresher keeps the token slot of one lwa or jwt auth scheme fresh
// (ss.Runtime.Refresher; docs/auth.md). Streams using the scheme wait for
// its token; while refreshing fails they see AUTH_FAILED with a
// *RefreshError. All methods are safe from any goroutine.
type Refresher interface {
	// Scheme returns the policy auth[] name.
	Scheme() string
	// Refresh asks for a refresh now, even after a permanent failure (for
	// example once the application has fixed the credentials). It does
	// not wait.
	Refresh()
	// Err returns the cause of the last refresh failure (a *RefreshError),
	// or nil when the last refresh succeeded or none has failed.
	Err() error
	// Refreshes returns how many refreshes have started.
	Refreshes() uint64
}
