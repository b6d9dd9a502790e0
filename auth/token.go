package auth

import (
	"errors"
	"time"
)

// Slots is the number of slots of each kind (policy auth[].blob is 0..3).
const Slots = 4

// Errors.
var (
	// ErrClosed is returned by a Store or Refresher used after Close.
	ErrClosed = errors.New("ss: auth: closed")
	// ErrSlot is wrapped when a slot number is outside 0..Slots-1.
	ErrSlot = errors.New("ss: auth: slot out of range (0..3)")
	// ErrNoCredentials is wrapped when a provider lacks what it needs (an
	// LWA refresh token and client id, a JWT key). It is not retried with
	// backoff: the refresher waits until the store changes.
	ErrNoCredentials = errors.New("ss: auth: no credentials")
	// ErrBadResponse is wrapped when a token endpoint's answer cannot be
	// used (not JSON, no access_token, a negative expires_in).
	ErrBadResponse = errors.New("ss: auth: bad token response")
)

// Token is one auth token and when it stops being valid.
type Token struct {
	// Value is the token as sent (after http_auth_preamble).
	Value []byte
	// Type is the token type the issuer reported ("bearer"), if any.
	Type string
	// Issued is when the token was obtained.
	Issued time.Time
	// Expiry is when the token stops being valid; zero: never.
	Expiry time.Time
}

// Valid reports whether t has a value and has not expired at now.
func (t Token) Valid(now time.Time) bool {
	return len(t.Value) > 0 && (t.Expiry.IsZero() || now.Before(t.Expiry))
}

// Device is the device identity sent in the http_dsn/fwv/devtype headers.
type Device struct {
	Serial          string
	FirmwareVersion string
	Type            string
}

// LWACredentials are what a Login With Amazon refresh needs.
type LWACredentials struct {
	RefreshToken string
	ClientID     string
	ClientSecret string // optional
}

// String hides the secrets.
func (c LWACredentials) String() string {
	return "LWACredentials{ClientID:" + c.ClientID + ", RefreshToken:[redacted]}"
}

// Kind names a kind of slot.
type Kind uint8

// Slot kinds.
const (
	KindToken       Kind = iota + 1 // auth tokens
	KindLWA                         // LWA refresh credentials
	KindSigningKey                  // JWT signing keys
	KindClientCert                  // TLS client certificates
	KindCredentials                 // SigV4 credential providers
	KindDevice                      // the device identity (Slot is 0)
)

var kindNames = [...]string{KindToken: "token", KindLWA: "lwa", KindSigningKey: "signing-key",
	KindClientCert: "client-cert", KindCredentials: "credentials", KindDevice: "device"}

// String returns the kind's name.
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "kind?"
}

// Change says which slot a Store update touched.
type Change struct {
	Kind Kind
	Slot int
}
