package httpc

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

var sigv4Signer = v4.NewSigner()

// amzDateFormat is the x-amz-date layout.
const amzDateFormat = "20060102T150405Z"

// signV4 adds the SigV4 Authorization header (streams.md §11.2.9): signed
// headers are host plus every set mapped x-amz-* header; the canonical
// request includes the query string and the URI-encoded path.
func (r *run) signV4(ctx context.Context, req *outRequest) error {
	a, st := r.a, r.a.Type
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
		r.log.Debug("ss: sigv4: missing headers (x-amz-date and x-amz-content-sha256 must be set)", "stream", a.StreamID)
		return fmt.Errorf("%w: missing headers: x-amz-date and x-amz-content-sha256 must be set", ErrSigV4)
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
	creds, ok := r.env.SigV4(int(st.UseAuth.Blob))
	if !ok || creds.AccessKeyID == "" {
		return fmt.Errorf("%w: no credentials in slot %d", ErrSigV4, st.UseAuth.Blob)
	}
	p, q, _ := strings.Cut(req.ep.Path, "?")
	sr := &http.Request{
		Method: req.method,
		URL:    &url.URL{Scheme: scheme(req.ep), Host: req.host, Opaque: "//" + req.host + p, RawQuery: q},
		Host:   req.host,
		Header: scratch,
	}
	err = sigv4Signer.SignHTTP(ctx, aws.Credentials{
		AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken,
	}, sr, hash, service, region, when)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSigV4, err)
	}
	if tok := sr.Header.Get("X-Amz-Security-Token"); tok != "" {
		req.headers = append(req.headers, header{"x-amz-security-token", tok})
	}
	req.headers = append(req.headers, header{"Authorization", sr.Header.Get("Authorization")})
	return nil
}
