// Package auth holds what an application gives ss to authenticate its
// streams, and the errors it may check (docs/auth.md).
//
// Credentials never appear in the policy. The application puts them in its
// runtime's credential store, a Store (ss.Runtime.Blobs): auth tokens,
// Login With Amazon refresh credentials (LWACredentials), JWT signing keys,
// TLS client certificates, SigV4 credential providers (StaticCredentials,
// EnvCredentials, ProfileCredentials: the AWS SDK's own) and the device
// identity (Device). The policy's auth[] schemes say which slot a
// streamtype uses.
//
// The token of an lwa or jwt scheme is kept fresh by a Refresher
// (ss.Runtime.Refresher), configured through ss.AuthConfig (JWT, Tuning):
// streams using the scheme wait for a valid token, it is refreshed before
// expiry, and while refreshing fails the streams see AUTH_FAILED with a
// *RefreshError; OAuth2 error responses (*OAuthError, ErrInvalidGrant) are
// not retried until the credentials change.
//
// CustomAuthorizer builds the MQTT user name of an AWS IoT custom
// authorizer login.
package auth
