package ws

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
	"github.com/securestreams/ss/transport"
)

// ErrSigV4 is wrapped when the handshake cannot be signed.
var ErrSigV4 = errors.New("ss: ws: sigv4")

var signer = v4.NewSigner()

// amzDateFormat is the x-amz-date layout.
const amzDateFormat = "20060102T150405Z"

// usesSigV4 reports whether the streamtype's use_auth names a sigv4 scheme.
func usesSigV4(st *policy.Streamtype) bool {
	return st.UseAuth != nil && st.UseAuth.Type == policy.AuthSigV4
}

// signV4 adds the SigV4 Authorization (and session token) headers for the
// handshake GET (streams.md §11.2.9, as transport/httpc does it): signed
// headers are host plus every set mapped x-amz-* header; x-amz-date and
// x-amz-content-sha256 must be among them, region and service come from the
// aws_region/aws_service metadata, credentials from the use_auth slot.
func signV4(ctx context.Context, a *transport.Attempt, ep *transport.Endpoint, host string, h http.Header) error {
	st := a.Type
	scratch := make(http.Header)
	var date, hash string
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
			date = v
		case "x-amz-content-sha256":
			hash = v
		}
	}
	if date == "" || hash == "" {
		return fmt.Errorf("%w: x-amz-date and x-amz-content-sha256 metadata must be set", ErrSigV4)
	}
	when, err := time.Parse(amzDateFormat, date)
	if err != nil {
		return fmt.Errorf("%w: x-amz-date %q is not in %s form", ErrSigV4, date, amzDateFormat)
	}
	region, _ := a.Lookup(st.AWSRegion)
	service, _ := a.Lookup(st.AWSService)
	if region == "" || service == "" {
		return fmt.Errorf("%w: region (%q) and service (%q) metadata must be set", ErrSigV4, st.AWSRegion, st.AWSService)
	}
	var creds transport.Credentials
	ok := false
	if a.Env.SigV4 != nil {
		creds, ok = a.Env.SigV4(int(st.UseAuth.Blob))
	}
	if !ok || creds.AccessKeyID == "" {
		return fmt.Errorf("%w: no credentials in slot %d", ErrSigV4, st.UseAuth.Blob)
	}
	scheme := "http"
	if ep.TLS {
		scheme = "https"
	}
	p, q, _ := strings.Cut(ep.Path, "?")
	sr := &http.Request{
		Method: http.MethodGet,
		URL:    &url.URL{Scheme: scheme, Host: host, Opaque: "//" + host + p, RawQuery: q},
		Host:   host,
		Header: scratch,
	}
	err = signer.SignHTTP(ctx, aws.Credentials{
		AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken,
	}, sr, hash, service, region, when)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSigV4, err)
	}
	if tok := sr.Header.Get("X-Amz-Security-Token"); tok != "" {
		h["x-amz-security-token"] = []string{tok}
	}
	h["Authorization"] = []string{sr.Header.Get("Authorization")}
	return nil
}
