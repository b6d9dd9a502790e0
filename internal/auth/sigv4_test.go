package auth

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/securestreams/ss/auth"
	"github.com/securestreams/ss/internal/testutil"
)

var testCreds = aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", SessionToken: "sess/+token=="}

func verifier() *testutil.PresignVerifier {
	return &testutil.PresignVerifier{Keys: map[string]aws.Credentials{testCreds.AccessKeyID: testCreds}}
}

// A presigned URL verifies with the SDK-side verifier; changing any query
// parameter makes it fail.
func TestPresignedURLVerifiesAndTamperingFails(t *testing.T) {
	raw, err := PresignWebSocket(context.Background(), testCreds, Presign{Host: "a1b2c3-ats.iot.eu-west-1.amazonaws.com", Region: "eu-west-1"})
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme != "wss" || u.Path != "/mqtt" {
		t.Fatalf("url %s", raw)
	}
	if err := verifier().VerifyURL(u.Host, u); err != nil {
		t.Fatalf("verifier rejects a fresh URL: %v", err)
	}
	// The session token is appended after signing: last, and not signed.
	if !strings.HasSuffix(u.RawQuery, "&X-Amz-Security-Token="+url.QueryEscape(testCreds.SessionToken)) {
		t.Fatalf("query %s does not end with the session token", u.RawQuery)
	}
	q := u.Query()
	want := []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token"}
	if len(q) != len(want) {
		t.Fatalf("query has %d parameters: %v", len(q), q)
	}
	if !strings.HasSuffix(q.Get("X-Amz-Credential"), "/eu-west-1/iotdevicegateway/aws4_request") || q.Get("X-Amz-SignedHeaders") != "host" {
		t.Fatalf("scope %q signed %q", q.Get("X-Amz-Credential"), q.Get("X-Amz-SignedHeaders"))
	}
	for _, k := range want {
		tq := u.Query()
		v := tq.Get(k)
		tq.Set(k, tamper(v))
		tu := *u
		tu.RawQuery = tq.Encode()
		if err := verifier().VerifyURL(u.Host, &tu); err == nil {
			t.Errorf("tampered %s (%q → %q) still verifies", k, v, tamper(v))
		}
	}
	tq := u.Query()
	tq.Set("extra", "1")
	tu := *u
	tu.RawQuery = tq.Encode()
	if err := verifier().VerifyURL(u.Host, &tu); err == nil {
		t.Error("an added parameter still verifies")
	}
	if err := verifier().VerifyURL("other.example", u); err == nil {
		t.Error("a different host still verifies")
	}
}

// tamper changes one character of v.
func tamper(v string) string {
	if v == "" {
		return "x"
	}
	b := []byte(v)
	i := len(b) / 2
	if b[i] == 'a' {
		b[i] = 'b'
	} else {
		b[i] = 'a'
	}
	return string(b)
}

// Presigning again later gives a different URL (the signature carries the
// time): re-presigning per attempt is meaningful.
func TestPresignCarriesTime(t *testing.T) {
	p := Presign{Host: "h.example", Region: "us-east-1", Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	a, err := PresignWebSocket(context.Background(), testCreds, p)
	if err != nil {
		t.Fatal(err)
	}
	p.Time = p.Time.Add(time.Second)
	b, _ := PresignWebSocket(context.Background(), testCreds, p)
	if a == b || !strings.Contains(a, "X-Amz-Date=20260102T030405Z") {
		t.Fatalf("a=%s b=%s", a, b)
	}
	if _, err := PresignWebSocket(context.Background(), aws.Credentials{}, p); !errors.Is(err, errNoCredentials) {
		t.Fatalf("no creds: %v", err)
	}
}

// SignV4 signs the query and the x-amz headers; the signature matches the
// SDK's own signing of the same request.
func TestSignV4Header(t *testing.T) {
	when := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	h := http.Header{}
	h.Set("x-amz-date", when.Format(AMZDateFormat))
	h.Set("x-amz-content-sha256", EmptyPayloadHash)
	authz, tok, err := SignV4(context.Background(), testCreds, V4Request{Method: "GET", Scheme: "https", Host: "s3.example",
		Path: "/bucket/key?list-type=2&prefix=a", Header: h, PayloadHash: EmptyPayloadHash, Region: "eu-west-1", Service: "s3", Time: when})
	if err != nil {
		t.Fatal(err)
	}
	if tok != testCreds.SessionToken {
		t.Fatalf("security token %q", tok)
	}
	if !strings.HasPrefix(authz, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260102/eu-west-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature=") {
		t.Fatalf("authorization %q", authz)
	}
	// Another query gives another signature.
	authz2, _, _ := SignV4(context.Background(), testCreds, V4Request{Method: "GET", Scheme: "https", Host: "s3.example",
		Path: "/bucket/key?list-type=2&prefix=b", Header: h, PayloadHash: EmptyPayloadHash, Region: "eu-west-1", Service: "s3", Time: when})
	if authz2 == authz {
		t.Fatal("the query is not signed")
	}
	if _, _, err := SignV4(context.Background(), testCreds, V4Request{Host: "x"}); !errors.Is(err, errSigV4) {
		t.Fatalf("no region: %v", err)
	}
}

// Shared-config profiles and environment credentials come from the SDK's
// providers, wrapped in a cache by the store.
func TestSDKCredentialProviders(t *testing.T) {
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_REGION"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	dir := t.TempDir()
	f := filepath.Join(dir, "credentials")
	if err := os.WriteFile(f, []byte("[device]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = secretprofile\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := auth.ProfileCredentials(context.Background(), "device", f)
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t)
	if err := s.SetCredentials(ctxT(t), 2, p); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.CredentialsProvider(2).(*aws.CredentialsCache); !ok {
		t.Fatalf("slot holds %T, want *aws.CredentialsCache", s.CredentialsProvider(2))
	}
	c, err := s.Credentials(context.Background(), 2)
	if err != nil || c.AccessKeyID != "AKIDPROFILE" || c.SecretAccessKey != "secretprofile" {
		t.Fatalf("profile credentials %q (%v)", c.AccessKeyID, err)
	}
	if _, err := s.Credentials(context.Background(), 1); !errors.Is(err, errNoCredentials) {
		t.Fatalf("empty slot: %v", err)
	}
	if _, err := auth.EnvCredentials(); !errors.Is(err, errNoCredentials) {
		t.Fatalf("env without keys: %v", err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secretenv")
	ep, err := auth.EnvCredentials()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetCredentials(ctxT(t), 0, ep); err != nil {
		t.Fatal(err)
	}
	if c, err := s.Credentials(context.Background(), 0); err != nil || c.AccessKeyID != "AKIDENV" {
		t.Fatalf("env credentials %q (%v)", c.AccessKeyID, err)
	}
}
