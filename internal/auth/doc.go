// Package auth holds the credentials streams use and keeps tokens fresh
// (docs/auth.md).
//
// A Store owns the blob slots: auth tokens, Login With Amazon refresh
// credentials, JWT signing keys, TLS client certificates, SigV4 credential
// providers and the device identity (serial, firmware version, type). One
// store actor is the only writer; readers (transports, on every attempt) load
// an immutable snapshot without locking, and watchers hear about every
// change.
//
// A Refresher is one actor per token auth scheme (policy auth[] of type lwa
// or jwt). It keeps its token slot fresh through a Provider: it refreshes
// before expiry (at 90 % of the lifetime by default), keeps serving the
// previous token until the new one has arrived, runs at most one refresh at a
// time however many streams wait, retries transient failures with backoff
// forever (a refresh stream that reached ALL_RETRIES_FAILED or TIMEOUT is
// just another transient failure) and reports OAuth2 error responses such as
// invalid_grant at once, without retrying them, until the credentials
// change. A Refresher is also a stream attempt gate: streams using its
// scheme wait for a valid token before connecting and see AUTH_FAILED with
// the cause while the refresh fails.
//
// Providers: LWA (a form POST through the policy's auth[].streamtype) and
// JWT (device-signed with jwx: ES256, RS256, EdDSA). SigV4 request signing
// and presigned WebSocket URLs (AWS IoT, service iotdevicegateway) use the
// aws-sdk-go-v2 signer with credentials from an aws.CredentialsProvider
// wrapped in aws.NewCredentialsCache.
//
// The values applications handle (Token, Device, LWACredentials, the JWT
// configuration, Tuning, the errors) and the Store and Refresher interfaces
// that Runtime.Blobs and Runtime.Refresher return are package
// github.com/securestreams/ss/auth's; this package implements them.
package auth
