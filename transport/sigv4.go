package transport

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/securestreams/ss/policy"
)

// ErrSigV4 is wrapped when a request or handshake cannot be signed.
var ErrSigV4 = errors.New("ss: sigv4")

// AMZDateFormat is the x-amz-date layout.
const AMZDateFormat = "20060102T150405Z"

var sigv4Signer = v4.NewSigner()

// UsesSigV4 reports whether the streamtype's use_auth names a sigv4 scheme.
func UsesSigV4(st *policy.Streamtype) bool {
	return st.UseAuth != nil && st.UseAuth.Type == policy.AuthSigV4
}

// SignV4 computes the SigV4 Authorization header for one request
// (streams.md §11.2.9), shared by the HTTP clients and the ws handshake:
// signed headers are host plus every set mapped x-amz-* header (x-amz-date
// and x-amz-content-sha256 must be among them); the canonical request
// includes the query string and the URI-encoded path; region and service
// come from the aws_region/aws_service metadata and credentials from the
// use_auth scheme's slot. securityToken is non-empty when the credentials
// carry a session token, to be sent as x-amz-security-token.
func SignV4(ctx context.Context, a *Attempt, method, scheme, host, path string) (authorization, securityToken string, err error) {
	st := a.Type
	var date, hash string
	var haveDate, haveHash bool
	scratch := make(http.Header)
	for i, m := range st.Metadata {
		if m.Header == "" || i >= len(a.Metadata) || !a.Metadata[i].Set {
			continue
		}
		name := strings.ToLower(m.Header)
		if !strings.HasPrefix(name, "x-amz-") {
			continue
		}
		v := a.Metadata[i].Value
		scratch.Add(name, v)
		switch name {
		case "x-amz-date":
			date, haveDate = v, true
		case "x-amz-content-sha256":
			hash, haveHash = v, true
		}
	}
	if !haveDate || !haveHash {
		if a.Env != nil && a.Env.Logger != nil {
			a.Env.Logger.Debug("ss: sigv4: missing headers (x-amz-date and x-amz-content-sha256 must be set)", "stream", a.StreamID)
		}
		return "", "", fmt.Errorf("%w: missing headers: x-amz-date and x-amz-content-sha256 must be set", ErrSigV4)
	}
	when, err := time.Parse(AMZDateFormat, date)
	if err != nil {
		return "", "", fmt.Errorf("%w: x-amz-date %q is not in %s form", ErrSigV4, date, AMZDateFormat)
	}
	region, _ := a.Lookup(st.AWSRegion)
	service, _ := a.Lookup(st.AWSService)
	if region == "" || service == "" {
		return "", "", fmt.Errorf("%w: region (%q) and service (%q) metadata must be set", ErrSigV4, st.AWSRegion, st.AWSService)
	}
	var creds Credentials
	ok := false
	if a.Env != nil && a.Env.SigV4 != nil && st.UseAuth != nil {
		creds, ok = a.Env.SigV4(int(st.UseAuth.Blob))
	}
	if !ok || creds.AccessKeyID == "" {
		slot := -1
		if st.UseAuth != nil {
			slot = int(st.UseAuth.Blob)
		}
		return "", "", fmt.Errorf("%w: no credentials in slot %d", ErrSigV4, slot)
	}
	p, q, _ := strings.Cut(path, "?")
	sr := &http.Request{
		Method: method,
		URL:    &url.URL{Scheme: scheme, Host: host, Opaque: "//" + host + p, RawQuery: q},
		Host:   host,
		Header: scratch,
	}
	err = sigv4Signer.SignHTTP(ctx, aws.Credentials{
		AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken,
	}, sr, hash, service, region, when)
	if err != nil {
		return "", "", fmt.Errorf("%w: %w", ErrSigV4, err)
	}
	return sr.Header.Get("Authorization"), sr.Header.Get("X-Amz-Security-Token"), nil
}
