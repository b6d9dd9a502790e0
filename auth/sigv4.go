package auth

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
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// ErrSigV4 is wrapped when a request or URL cannot be signed.
var ErrSigV4 = errors.New("ss: sigv4")

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
		return "", "", fmt.Errorf("%w: %w: empty access key id or secret", ErrSigV4, ErrNoCredentials)
	}
	if r.Region == "" || r.Service == "" {
		return "", "", fmt.Errorf("%w: region (%q) and service (%q) must be set", ErrSigV4, r.Region, r.Service)
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
		return "", "", fmt.Errorf("%w: %w", ErrSigV4, err)
	}
	return sr.Header.Get("Authorization"), sr.Header.Get("X-Amz-Security-Token"), nil
}

// StaticCredentials returns a provider of fixed credentials (the SDK's
// credentials.StaticCredentialsProvider).
func StaticCredentials(accessKeyID, secretAccessKey, sessionToken string) aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(accessKeyID, secretAccessKey, sessionToken)
}

// ProfileCredentials returns the credentials provider of the SDK's shared
// configuration (environment variables, then ~/.aws/config and
// ~/.aws/credentials, or files when given) for profile ("" : the default
// profile, or AWS_PROFILE), already wrapped in a credentials cache. Nothing
// is fetched until credentials are first needed.
func ProfileCredentials(ctx context.Context, profile string, files ...string) (aws.CredentialsProvider, error) {
	opts := []func(*config.LoadOptions) error{}
	if profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(profile))
	}
	if len(files) > 0 {
		opts = append(opts, config.WithSharedConfigFiles(files), config.WithSharedCredentialsFiles(files))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("ss: auth: AWS shared config (profile %q): %w", profile, err)
	}
	if cfg.Credentials == nil {
		return nil, fmt.Errorf("%w: AWS profile %q has no credentials", ErrNoCredentials, profile)
	}
	return cfg.Credentials, nil
}

// EnvCredentials returns the credentials in the AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN environment variables, read
// by the SDK's own environment loader.
func EnvCredentials() (aws.CredentialsProvider, error) {
	env, err := config.NewEnvConfig()
	if err != nil {
		return nil, fmt.Errorf("ss: auth: AWS environment: %w", err)
	}
	if !env.Credentials.HasKeys() {
		return nil, fmt.Errorf("%w: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set", ErrNoCredentials)
	}
	return credentials.StaticCredentialsProvider{Value: env.Credentials}, nil
}
