package auth

import "time"

// Slots is the number of slots of each kind (policy auth[].blob is 0..3).
const Slots = 4

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
	Serial          string // http_dsn; the default JWT subject
	FirmwareVersion string // http_fwv
	Type            string // http_devtype
}

// LWACredentials are what a Login With Amazon refresh needs (Store.SetLWA).
type LWACredentials struct {
	RefreshToken string // replaced in the store when the token endpoint rotates it
	ClientID     string
	ClientSecret string // optional
}

// String hides the secrets.
func (c LWACredentials) String() string {
	return "LWACredentials{ClientID:" + c.ClientID + ", RefreshToken:[redacted]}"
}
