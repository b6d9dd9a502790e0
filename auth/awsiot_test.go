package auth

import (
	"net/url"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/securestreams/ss/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, testutil.GoleakOptions()...) }

// The custom authorizer user name has the documented shape, values escaped.
func TestCustomAuthorizerUsername(t *testing.T) {
	got := CustomAuthorizer{Username: "dev1", Name: "my-authorizer", TokenKeyName: "token", Token: "abc def", Signature: "c2ln+/=="}.MQTTUsername()
	want := "dev1?x-amz-customauthorizer-name=my-authorizer&x-amz-customauthorizer-signature=c2ln%2B%2F%3D%3D&token=abc+def"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	_, q, _ := strings.Cut(got, "?")
	v, err := url.ParseQuery(q)
	if err != nil || v.Get("x-amz-customauthorizer-signature") != "c2ln+/==" || v.Get("token") != "abc def" {
		t.Fatalf("round trip %v (%v)", v, err)
	}
	if got := (CustomAuthorizer{Name: "a"}).MQTTUsername(); got != "?x-amz-customauthorizer-name=a" {
		t.Fatalf("unsigned: %s", got)
	}
}
