// Command lwa shows Login With Amazon token refresh (docs/auth.md): a
// stream that waits for its token, the token fetched through the policy's
// token_refresh streamtype, and a refresh before the token expires. A local
// token endpoint and API stand in for Amazon's, so it runs offline.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/auth"
	"github.com/securestreams/ss/policy"
)

const policyJSON = `{
  "release": "example-lwa", "product": "example", "schema-version": 1,
  "retry": [{"default": {"backoff": [100, 200, 400], "conceal": 5, "jitterpc": 0}}],
  "auth": [{"name": "lwa", "type": "lwa", "streamtype": "token_refresh", "blob": 1}],
  "s": [
    {"token_refresh": {"endpoint": "127.0.0.1", "port": %[1]d, "protocol": "h1", "http_method": "POST",
      "http_url": "auth/o2/token", "http_www_form_urlencoded": true, "retry": "default"}},
    {"api": {"endpoint": "127.0.0.1", "port": %[1]d, "protocol": "h1", "http_method": "GET",
      "http_url": "greet", "retry": "default", "use_auth": "lwa",
      "http_auth_header": "authorization:", "http_auth_preamble": "Bearer "}}
  ]}`

// tokenLifetime is short so the refresh (at 90 %) happens while you watch.
const tokenLifetime = 2 * time.Second

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "lwa:", err)
		os.Exit(1)
	}
}

// amazon stands in for the LWA token endpoint and an API checking tokens.
type amazon struct {
	mu     sync.Mutex
	n      int
	expiry map[string]time.Time
}

func (a *amazon) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/auth/o2/token":
		if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "refresh_token" ||
			r.PostForm.Get("refresh_token") != "Atzr|example" || r.PostForm.Get("client_id") != "amzn1.example" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
			return
		}
		a.mu.Lock()
		a.n++
		tok := fmt.Sprintf("Atza|tok-%d", a.n)
		a.expiry[tok] = time.Now().Add(tokenLifetime)
		a.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "bearer", "expires_in": tokenLifetime.Seconds()})
	case "/greet":
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		a.mu.Lock()
		exp, ok := a.expiry[tok]
		a.mu.Unlock()
		if !ok || time.Now().After(exp) {
			http.Error(w, "invalid token", http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, "hello, your token is %s", tok)
	default:
		http.NotFound(w, r)
	}
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := httptest.NewServer(&amazon{expiry: map[string]time.Time{}})
	defer srv.Close()
	p, _, err := policy.Parse([]byte(fmt.Sprintf(policyJSON, srv.Listener.Addr().(*net.TCPAddr).Port)), policy.Options{})
	if err != nil {
		return err
	}
	rt, err := ss.New(ctx, ss.Config{Policy: p})
	if err != nil {
		return err
	}
	defer rt.Close(context.Background())

	// The stream is created before any credentials exist: it waits.
	s, err := rt.Create(ctx, "api")
	if err != nil {
		return err
	}
	if err := s.Connect(); err != nil {
		return err
	}
	fmt.Println("api stream created; it waits for its token (no connection attempt yet)")
	// Without credentials the refresh fails at once: the waiting stream
	// reports AUTH_FAILED with the cause, and keeps waiting.
	if _, err := transaction(ctx, s, ss.AuthFailed); err != nil {
		return err
	}

	// The refresh credentials arrive (from a file, a provisioning step...).
	if err := rt.Blobs().SetLWA(ctx, 1, auth.LWACredentials{RefreshToken: "Atzr|example", ClientID: "amzn1.example"}); err != nil {
		return err
	}
	body, err := transaction(ctx, s, ss.QoSAckRemote)
	if err != nil {
		return err
	}
	fmt.Println("api:", body)
	first := rt.Blobs().Token(1)
	fmt.Printf("token %s expires in %s\n", first.Value, time.Until(first.Expiry).Round(100*time.Millisecond))

	// At 90 % of its lifetime the refresher fetches the next token; the old
	// one is served until then.
	for string(rt.Blobs().Token(1).Value) == string(first.Value) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(20 * time.Millisecond)
	}
	if time.Now().Before(first.Expiry) {
		fmt.Printf("refreshed before expiry: %s, %s before %s expired\n",
			rt.Blobs().Token(1).Value, time.Until(first.Expiry).Round(100*time.Millisecond), first.Value)
	} else {
		return fmt.Errorf("the token was refreshed after it expired")
	}
	s2, err := rt.Create(ctx, "api")
	if err != nil {
		return err
	}
	if err := s2.Connect(); err != nil {
		return err
	}
	body, err = transaction(ctx, s2, ss.QoSAckRemote)
	if err != nil {
		return err
	}
	fmt.Println("api:", body)
	return nil
}

// transaction reads a stream's events until state until (QOS_ACK_REMOTE:
// the response is complete) and returns the payload received.
func transaction(ctx context.Context, s *ss.Stream, until ss.State) (string, error) {
	var b strings.Builder
	for {
		select {
		case ev := <-s.Events():
			if ev.Kind == ss.PayloadEvent {
				b.Write(ev.Payload)
				continue
			}
			fmt.Println("  state:", ev.State)
			if ev.State == ss.AuthFailed {
				fmt.Println("  cause:", ev.Err)
			}
			switch ev.State {
			case until:
				return b.String(), nil
			case ss.QoSNackRemote, ss.AllRetriesFailed:
				return "", fmt.Errorf("%s: %v", ev.State, ev.Err)
			}
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}
