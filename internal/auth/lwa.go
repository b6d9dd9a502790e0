package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// MaxTokenResponse bounds a token endpoint's response body.
const MaxTokenResponse = 64 << 10

// PostFunc sends one application/x-www-form-urlencoded POST and returns the
// response body. On a non-success response it returns the body it got (for
// the OAuth2 error in it) together with an error.
type PostFunc func(ctx context.Context, form []byte) (body []byte, err error)

// LWA is the Login With Amazon token provider: it posts the refresh-token
// form (grant_type=refresh_token, refresh_token, client_id and, when set,
// client_secret) with the LWA credentials of Slot and reads access_token,
// expires_in and token_type from the answer. A rotated refresh_token in the
// answer replaces the stored one.
type LWA struct {
	Store *Store
	// Slot holds the LWA credentials (the scheme's auth[].blob).
	Slot int
	// Post sends the form; the runtime posts it through the scheme's
	// auth[].streamtype. HTTPPost posts it with a plain http.Client.
	Post PostFunc
}

// DependsOn reports a change of the LWA credentials of Slot.
func (l *LWA) DependsOn(ch Change) bool { return ch.Kind == KindLWA && ch.Slot == l.Slot }

// lwaForm returns the refresh request body for c.
func lwaForm(c LWACredentials) []byte {
	v := url.Values{}
	v.Set("grant_type", "refresh_token")
	v.Set("refresh_token", c.RefreshToken)
	v.Set("client_id", c.ClientID)
	if c.ClientSecret != "" {
		v.Set("client_secret", c.ClientSecret)
	}
	return []byte(v.Encode())
}

// Refresh implements Provider.
func (l *LWA) Refresh(ctx context.Context) (Token, error) {
	c := l.Store.LWA(l.Slot)
	if c.RefreshToken == "" || c.ClientID == "" {
		return Token{}, fmt.Errorf("%w: LWA slot %d needs a refresh token and a client id", errNoCredentials, l.Slot)
	}
	if l.Post == nil {
		return Token{}, fmt.Errorf("%w: LWA slot %d has no way to reach the token endpoint", errNoCredentials, l.Slot)
	}
	issued := time.Now()
	body, err := l.Post(ctx, lwaForm(c))
	tok, rotated, perr := ParseTokenResponse(body, issued)
	if err != nil {
		var oe *OAuthError
		if errors.As(perr, &oe) {
			return Token{}, fmt.Errorf("%w (%w)", oe, err)
		}
		return Token{}, err
	}
	if perr != nil {
		return Token{}, perr
	}
	if rotated != "" && rotated != c.RefreshToken {
		c.RefreshToken = rotated
		_ = l.Store.set(context.Background(), false, Change{KindLWA, l.Slot}, func(n *snapshot) {
			// Only if nobody replaced the credentials meanwhile.
			if n.lwa[l.Slot].ClientID == c.ClientID {
				n.lwa[l.Slot].RefreshToken = rotated
			}
		})
	}
	return tok, nil
}

// tokenResponse is the JSON a token endpoint answers with (RFC 6749 §5).
type tokenResponse struct {
	AccessToken      string      `json:"access_token"`
	ExpiresIn        json.Number `json:"expires_in"`
	TokenType        string      `json:"token_type"`
	RefreshToken     string      `json:"refresh_token"`
	Error            string      `json:"error"`
	ErrorDescription string      `json:"error_description"`
	ErrorURI         string      `json:"error_uri"`
}

// ParseTokenResponse reads an OAuth2 token response issued at issued. An
// error response gives an *OAuthError; rotated is a new refresh_token, if
// the answer carries one.
func ParseTokenResponse(body []byte, issued time.Time) (tok Token, rotated string, err error) {
	if len(body) > MaxTokenResponse {
		return Token{}, "", fmt.Errorf("%w: %d bytes (at most %d)", errBadResponse, len(body), MaxTokenResponse)
	}
	var r tokenResponse
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		return Token{}, "", fmt.Errorf("%w: not a JSON object: %v", errBadResponse, err)
	}
	if r.Error != "" {
		return Token{}, "", &OAuthError{Code: r.Error, Description: r.ErrorDescription, URI: r.ErrorURI}
	}
	if r.AccessToken == "" {
		return Token{}, "", fmt.Errorf("%w: no access_token", errBadResponse)
	}
	tok = Token{Value: []byte(r.AccessToken), Type: r.TokenType, Issued: issued}
	if r.ExpiresIn != "" {
		secs, err := r.ExpiresIn.Float64()
		if err != nil || secs < 0 || secs > 10*365*24*3600 {
			return Token{}, "", fmt.Errorf("%w: expires_in %q is not a number of seconds", errBadResponse, r.ExpiresIn.String())
		}
		tok.Expiry = issued.Add(time.Duration(secs * float64(time.Second)))
	}
	return tok, r.RefreshToken, nil
}

// HTTPPost returns a PostFunc that posts to url with client (nil:
// http.DefaultClient). A status other than 2xx is an error carrying the
// body.
func HTTPPost(client *http.Client, url string) PostFunc {
	if client == nil {
		client = http.DefaultClient
	}
	return func(ctx context.Context, form []byte) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(form))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, MaxTokenResponse+1))
		if err != nil {
			return nil, err
		}
		if resp.StatusCode/100 != 2 {
			return body, fmt.Errorf("ss: auth: token endpoint answered %s", resp.Status)
		}
		return body, nil
	}
}

// oauthPermanent reports whether retrying the same request cannot help:
// every OAuth2 error code except temporarily_unavailable and server_error.
func oauthPermanent(e *OAuthError) bool {
	return e.Code != "temporarily_unavailable" && e.Code != "server_error"
}
