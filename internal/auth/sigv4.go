package auth

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// AMZDateFormat is the x-amz-date layout.
const AMZDateFormat = "20060102T150405Z"

// EmptyPayloadHash is the hex SHA-256 of an empty payload.
const EmptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

var signer = v4.NewSigner()

// V4Request is what SignV4 signs.
type V4Request struct {
	Method string
	Scheme string // "https", "wss", ...
	Host   string // host[:port] as sent in Host
	// Path is the URI path, URI-encoded, optionally followed by "?" and the
	// query, which is signed as the canonical query string.
	Path string
	// Header holds the x-amz-* headers to sign (lower-case names); host is
	// always signed.
	Header http.Header
	// PayloadHash is the hex SHA-256 of the payload or UNSIGNED-PAYLOAD.
	PayloadHash     string
	Region, Service string
	Time            time.Time
}

// SignV4 computes the SigV4 Authorization header for r with creds. When
// the credentials carry a session token, securityToken is it, to be sent
// (and it is signed) as x-amz-security-token.
func SignV4(ctx context.Context, creds aws.Credentials, r V4Request) (authorization, securityToken string, err error) {
	if creds.AccessKeyID == "" || creds.SecretAccessKey == "" {
		return "", "", fmt.Errorf("%w: %w: empty access key id or secret", errSigV4, errNoCredentials)
	}
	if r.Region == "" || r.Service == "" {
		return "", "", fmt.Errorf("%w: region (%q) and service (%q) must be set", errSigV4, r.Region, r.Service)
	}
	p, q, _ := strings.Cut(r.Path, "?")
	hdr := r.Header.Clone()
	if hdr == nil {
		hdr = http.Header{}
	}
	sr := &http.Request{
		Method: r.Method,
		URL:    &url.URL{Scheme: r.Scheme, Host: r.Host, Opaque: "//" + r.Host + p, RawQuery: q},
		Host:   r.Host,
		Header: hdr,
	}
	if err := signer.SignHTTP(ctx, creds, sr, r.PayloadHash, r.Service, r.Region, r.Time); err != nil {
		return "", "", fmt.Errorf("%w: %w", errSigV4, err)
	}
	return sr.Header.Get("Authorization"), sr.Header.Get("X-Amz-Security-Token"), nil
}
