package transport

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/securestreams/ss/auth"
	iauth "github.com/securestreams/ss/internal/auth"
	"github.com/securestreams/ss/policy"
)

// ErrSigV4 is wrapped when a request or handshake cannot be signed (it is
// auth.ErrSigV4).
var ErrSigV4 = auth.ErrSigV4

// AMZDateFormat is the x-amz-date layout.
const AMZDateFormat = iauth.AMZDateFormat

// UsesSigV4 reports whether the streamtype's use_auth names a sigv4 scheme.
func UsesSigV4(st *policy.Streamtype) bool {
	return st.UseAuth != nil && st.UseAuth.Type == policy.AuthSigV4
}

// SignV4 computes the SigV4 Authorization header for one request
// (docs/auth.md), shared by the HTTP clients and the ws handshake; the
// signing itself is auth.SignV4. Signed headers are host plus every set
// mapped x-amz-* header (x-amz-date and x-amz-content-sha256 must be among
// them); the canonical request includes the query string and the
// URI-encoded path; region and service come from the aws_region/aws_service
// metadata and credentials from the use_auth scheme's slot (AWSCredentials,
// else SigV4). securityToken is non-empty when the credentials carry a
// session token, to be sent as x-amz-security-token.
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
	creds, err := AWSCredentials(ctx, a)
	if err != nil {
		return "", "", err
	}
	return iauth.SignV4(ctx, creds, iauth.V4Request{
		Method: method, Scheme: scheme, Host: host, Path: path, Header: scratch,
		PayloadHash: hash, Region: region, Service: service, Time: when,
	})
}

// AWSCredentials returns the SigV4 credentials of the attempt's use_auth
// slot, from Env.AWSCredentials.
func AWSCredentials(ctx context.Context, a *Attempt) (aws.Credentials, error) {
	slot := -1
	if a.Type.UseAuth != nil {
		slot = int(a.Type.UseAuth.Blob)
	}
	if a.Env != nil && a.Env.AWSCredentials != nil && slot >= 0 {
		c, err := a.Env.AWSCredentials(ctx, slot)
		if err != nil {
			return aws.Credentials{}, fmt.Errorf("%w: %w", ErrSigV4, err)
		}
		if c.AccessKeyID != "" {
			return c, nil
		}
	}
	return aws.Credentials{}, fmt.Errorf("%w: no credentials in slot %d", ErrSigV4, slot)
}
