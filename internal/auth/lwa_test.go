package auth

import (
	"errors"
	"testing"
	"time"

	"github.com/securestreams/ss/auth"
)

func TestParseTokenResponse(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tok, rot, err := ParseTokenResponse([]byte(`{"access_token":"Atza|x","refresh_token":"Atzr|new","token_type":"bearer","expires_in":3600}`), at)
	if err != nil || string(tok.Value) != "Atza|x" || rot != "Atzr|new" || !tok.Expiry.Equal(at.Add(time.Hour)) || tok.Type != "bearer" {
		t.Fatalf("%+v %q %v", tok, rot, err)
	}
	for body, want := range map[string]error{
		`{"error":"invalid_grant","error_description":"revoked"}`: auth.ErrInvalidGrant,
		`{"error":"unauthorized_client"}`:                         nil,
		`not json`:                                                errBadResponse,
		`{"token_type":"bearer"}`:                                 errBadResponse,
		`{"access_token":"a","expires_in":-5}`:                    errBadResponse,
		`{"access_token":"a","expires_in":"soon"}`:                errBadResponse,
	} {
		_, _, err := ParseTokenResponse([]byte(body), at)
		if err == nil || (want != nil && !errors.Is(err, want)) {
			t.Errorf("%s: %v, want %v", body, err, want)
		}
	}
	var oe *OAuthError
	_, _, err = ParseTokenResponse([]byte(`{"error":"temporarily_unavailable"}`), at)
	if !errors.As(err, &oe) || oauthPermanent(oe) || errors.Is(err, auth.ErrInvalidGrant) {
		t.Fatalf("temporarily_unavailable: %v", err)
	}
}

func FuzzParseTokenResponse(f *testing.F) {
	f.Add([]byte(`{"access_token":"a","expires_in":1}`))
	f.Add([]byte(`{"error":"invalid_grant"}`))
	f.Add([]byte(`{"access_token":"a","expires_in":1e400}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		tok, _, err := ParseTokenResponse(b, time.Unix(0, 0))
		if err == nil && len(tok.Value) == 0 {
			t.Fatal("success without a token")
		}
	})
}
