package testutil

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// PresignVerifier checks SigV4-presigned WebSocket URLs the way an AWS IoT
// endpoint does, recomputing the signature with the SDK's own signer. It is
// the server side of auth.PresignWebSocket for tests and examples.
type PresignVerifier struct {
	// Keys maps access key ids to their credentials; a credential with a
	// session token requires it as X-Amz-Security-Token (outside the
	// signature).
	Keys map[string]aws.Credentials
	// Service is the expected service (default "iotdevicegateway").
	Service string
	// MaxSkew bounds |now − X-Amz-Date| (default 5 min).
	MaxSkew time.Duration
}

var sigv4Params = []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Signature"}

// Verify returns nil when r (a handshake GET) carries a valid presigned
// query for host.
func (v *PresignVerifier) Verify(r *http.Request) error {
	return v.VerifyURL(r.Host, r.URL)
}

// VerifyURL is Verify for a URL received with Host host.
func (v *PresignVerifier) VerifyURL(host string, u *url.URL) error {
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return fmt.Errorf("presign: query: %w", err)
	}
	for k, vs := range q {
		if len(vs) != 1 {
			return fmt.Errorf("presign: parameter %s given %d times", k, len(vs))
		}
	}
	if q.Get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" {
		return fmt.Errorf("presign: algorithm %q", q.Get("X-Amz-Algorithm"))
	}
	scope := strings.Split(q.Get("X-Amz-Credential"), "/")
	if len(scope) != 5 || scope[4] != "aws4_request" {
		return fmt.Errorf("presign: credential %q", q.Get("X-Amz-Credential"))
	}
	service := v.Service
	if service == "" {
		service = "iotdevicegateway"
	}
	if scope[3] != service {
		return fmt.Errorf("presign: service %q, want %q", scope[3], service)
	}
	creds, ok := v.Keys[scope[0]]
	if !ok {
		return fmt.Errorf("presign: unknown access key %q", scope[0])
	}
	if got := q.Get("X-Amz-Security-Token"); got != creds.SessionToken {
		return errors.New("presign: wrong or missing security token")
	}
	when, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
	if err != nil {
		return fmt.Errorf("presign: date: %w", err)
	}
	skew := v.MaxSkew
	if skew == 0 {
		skew = 5 * time.Minute
	}
	if d := time.Since(when); d > skew || d < -skew {
		return fmt.Errorf("presign: date %s is %s away from now", when, d)
	}
	if when.Format("20060102") != scope[1] {
		return fmt.Errorf("presign: scope date %q does not match %s", scope[1], when)
	}
	rest := url.Values{}
	for k, vs := range q {
		if k == "X-Amz-Security-Token" || isSigParam(k) {
			continue
		}
		rest[k] = vs
	}
	req := &http.Request{Method: http.MethodGet, Host: host, Header: http.Header{},
		URL: &url.URL{Scheme: "https", Host: host, Path: u.Path, RawPath: u.RawPath, RawQuery: rest.Encode()}}
	signed, _, err := v4.NewSigner().PresignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey},
		req, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", service, scope[2], when)
	if err != nil {
		return err
	}
	su, err := url.Parse(signed)
	if err != nil {
		return err
	}
	want := su.Query()
	for _, k := range sigv4Params {
		if subtle.ConstantTimeCompare([]byte(want.Get(k)), []byte(q.Get(k))) != 1 {
			return fmt.Errorf("presign: %s does not verify", k)
		}
	}
	for k := range q {
		if _, ok := want[k]; !ok && k != "X-Amz-Security-Token" {
			return fmt.Errorf("presign: unsigned parameter %s", k)
		}
	}
	return nil
}

func isSigParam(k string) bool {
	for _, p := range sigv4Params {
		if k == p {
			return true
		}
	}
	return false
}
