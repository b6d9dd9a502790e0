package auth

import (
	"errors"
	"fmt"
	"strconv"
)

// Errors of the credential store and of token refreshes.
var (
	// ErrClosed is returned by a Store whose runtime has been closed.
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

// ErrSigV4 is wrapped when a request or URL cannot be signed.
var ErrSigV4 = errors.New("ss: sigv4")

// ErrKey is wrapped when a JWT signing key cannot be used.
var ErrKey = errors.New("ss: auth: jwt key")

// ErrInvalidGrant matches (errors.Is) an OAuth2 "invalid_grant" error
// response: the refresh token was revoked or expired.
var ErrInvalidGrant = errors.New("ss: auth: invalid_grant")

// OAuthError is an OAuth2 error response (RFC 6749 §5.2) from a token
// endpoint, found with errors.As in a *RefreshError. Every code except
// temporarily_unavailable and server_error is permanent: the refresher does
// not retry it until the credentials change (or Refresher.Refresh).
type OAuthError struct {
	Code        string // "invalid_grant", "unauthorized_client", ...
	Description string
	URI         string
}

func (e *OAuthError) Error() string {
	s := "ss: auth: token endpoint error " + strconv.Quote(e.Code)
	if e.Description != "" {
		s += ": " + e.Description
	}
	return s
}

// Is matches ErrInvalidGrant for code invalid_grant.
func (e *OAuthError) Is(target error) bool {
	return target == ErrInvalidGrant && e.Code == "invalid_grant"
}

// RefreshError is the cause a Refresher reports while its refresh fails.
type RefreshError struct {
	Scheme string // the policy auth[] name
	// Permanent is true for failures that are not retried with backoff
	// (OAuth2 error responses, missing credentials): the refresher waits
	// until the credentials change or Refresh is called.
	Permanent bool
	Err       error
}

func (e *RefreshError) Error() string {
	kind := "retrying with backoff"
	if e.Permanent {
		kind = "not retried until the credentials change"
	}
	return fmt.Sprintf("ss: auth: scheme %q: token refresh failed (%s): %v", e.Scheme, kind, e.Err)
}

func (e *RefreshError) Unwrap() error { return e.Err }
