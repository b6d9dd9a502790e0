package auth

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// IoTService is the SigV4 service name of AWS IoT's MQTT-over-WebSocket
// endpoint.
const IoTService = "iotdevicegateway"

// Presign is what PresignWebSocket signs.
type Presign struct {
	Scheme string // "wss" (default) or "ws"
	Host   string // host[:port]
	Path   string // default "/mqtt"
	Region string
	// Service defaults to IoTService.
	Service string
	// Time is the signing time; zero: now.
	Time time.Time
	// Expires, when > 0, adds X-Amz-Expires (signed).
	Expires time.Duration
	// SignSessionToken signs X-Amz-Security-Token like other services do;
	// by default (AWS IoT) the session token is appended after signing.
	SignSessionToken bool
}

// PresignWebSocket returns a presigned GET URL for a WebSocket handshake:
// the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date, X-Amz-SignedHeaders
// (host) and X-Amz-Signature query, signed over an empty payload. AWS IoT
// wants the session token outside the signature, so unless
// SignSessionToken is set it is appended as X-Amz-Security-Token after
// signing. Presign again for every connection attempt: the signature
// carries its time.
func PresignWebSocket(ctx context.Context, creds aws.Credentials, p Presign) (string, error) {
	if creds.AccessKeyID == "" || creds.SecretAccessKey == "" {
		return "", fmt.Errorf("%w: %w: empty access key id or secret", errSigV4, errNoCredentials)
	}
	if p.Host == "" || p.Region == "" {
		return "", fmt.Errorf("%w: presign needs a host (%q) and a region (%q)", errSigV4, p.Host, p.Region)
	}
	if p.Scheme == "" {
		p.Scheme = "wss"
	}
	if p.Path == "" {
		p.Path = "/mqtt"
	}
	if p.Service == "" {
		p.Service = IoTService
	}
	if p.Time.IsZero() {
		p.Time = time.Now()
	}
	u := &url.URL{Scheme: p.Scheme, Host: p.Host, Path: p.Path}
	if p.Expires > 0 {
		u.RawQuery = url.Values{"X-Amz-Expires": {fmt.Sprint(int64(p.Expires / time.Second))}}.Encode()
	}
	session := creds.SessionToken
	if !p.SignSessionToken {
		creds.SessionToken = ""
	}
	req := &http.Request{Method: http.MethodGet, URL: u, Host: p.Host, Header: http.Header{}}
	signed, _, err := signer.PresignHTTP(ctx, creds, req, EmptyPayloadHash, p.Service, p.Region, p.Time)
	if err != nil {
		return "", fmt.Errorf("%w: presign: %w", errSigV4, err)
	}
	if session != "" && !p.SignSessionToken {
		signed += "&X-Amz-Security-Token=" + url.QueryEscape(session)
	}
	return signed, nil
}
