package test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/policy"
)

// policyServer serves /policy.json, /policy.json.sig and /hello on
// loopback. Its fields may be changed between fetches.
type policyServer struct {
	*httptest.Server
	mu      sync.Mutex
	body    string
	status  int
	sig     string // served at /policy.json.sig and in X-Policy-Signature
	hold    chan struct{}
	fetches int
}

func newPolicyServer(t *testing.T) *policyServer {
	ps := &policyServer{status: 200}
	ps.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ps.mu.Lock()
		body, status, sig, hold := ps.body, ps.status, ps.sig, ps.hold
		if r.URL.Path == "/policy.json" {
			ps.fetches++
		}
		ps.mu.Unlock()
		switch r.URL.Path {
		case "/policy.json":
			if hold != nil {
				<-hold
			}
			w.Header().Set("X-Policy-Signature", sig)
			w.WriteHeader(status)
			w.Write([]byte(body))
		case "/policy.json.sig":
			w.Write([]byte(sig))
		case "/hello":
			w.Write([]byte("hello"))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(ps.Close)
	return ps
}

func (ps *policyServer) set(f func(ps *policyServer)) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	f(ps)
}

// policyText is a policy with the given release, a fetch_policy
// streamtype pointing at ps, and one more h1 streamtype named extra.
func (ps *policyServer) policyText(release, extra string) string {
	addr := ps.Listener.Addr().String()
	return fmt.Sprintf(`{"release": %q, "s": [
	{"fetch_policy": {"endpoint": %q, "protocol": "h1", "http_method": "GET", "http_url": "policy.json",
		"opportunistic": true, "metadata": [{"sig": "x-policy-signature:"}]}},
	{%q: {"endpoint": %q, "protocol": "h1", "http_method": "GET", "http_url": "hello"}}]}`, release, addr, extra, addr)
}

func mustPolicy(t *testing.T, text string) *policy.Policy {
	t.Helper()
	p, diags, err := policy.Parse([]byte(text), policy.Options{Strict: true})
	if err != nil {
		t.Fatalf("%v %v", err, diags)
	}
	return p
}

// nextFetch waits for the next PolicyReady outcome.
func nextFetch(t *testing.T, rt *ss.Runtime) ss.PolicyFetch {
	t.Helper()
	select {
	case o, ok := <-rt.PolicyReady():
		if !ok {
			t.Fatal("PolicyReady closed")
		}
		return o
	case <-time.After(10 * time.Second):
		t.Fatal("no fetch outcome")
		return ss.PolicyFetch{}
	}
}

// getHello runs one GET of streamtype name and returns the body; the
// transaction must succeed.
func getHello(t *testing.T, rt *ss.Runtime, name string) string {
	t.Helper()
	r := sysTransaction(t, rt, name)
	if !strings.Contains(r.String(), "QOS_ACK_REMOTE") {
		t.Fatalf("%s: %s", name, r)
	}
	return r.payload()
}

// TestFetchPolicySuccess: New fetches the policy; while the fetch is held
// by the server, the installed policy keeps working; then the fetched
// policy is installed and reported on PolicyReady.
func TestFetchPolicySuccess(t *testing.T) {
	ps := newPolicyServer(t)
	hold := make(chan struct{})
	ps.set(func(ps *policyServer) { ps.body, ps.hold = ps.policyText("2", "fetched"), hold })
	rt := newRuntime(t, ss.Config{Policy: mustPolicy(t, ps.policyText("1", "old"))})
	// The fetch is under way (the server holds it): the old policy serves.
	if got := getHello(t, rt, "old"); got != "hello" {
		t.Fatalf("old streamtype during the fetch: %q", got)
	}
	close(hold)
	o := nextFetch(t, rt)
	if o.Err != nil || o.Policy == nil || o.Policy.Release != "2" {
		t.Fatalf("outcome %+v", o)
	}
	if rt.Policy() != o.Policy {
		t.Fatal("fetched policy not installed")
	}
	if got := getHello(t, rt, "fetched"); got != "hello" {
		t.Fatalf("fetched streamtype: %q", got)
	}
	if _, err := rt.Create(context.Background(), "old"); !errors.Is(err, ss.ErrUnknownStreamtype) {
		t.Fatalf("old streamtype after the fetch: %v", err)
	}
}

// TestFetchPolicyFailures: each failure keeps the installed policy and
// reports an error wrapping ErrPolicyFetch (and the precise sentinel).
func TestFetchPolicyFailures(t *testing.T) {
	ps := newPolicyServer(t)
	big := ps.policyText("2", "fetched") + strings.Repeat(" ", 2000)
	for _, c := range []struct {
		name   string
		body   string
		status int
		want   error
		text   string
	}{
		{"oversize", big, 200, ss.ErrPolicyTooLarge, "size limit"},
		{"html page", "<html><body>Service temporarily down</body></html>", 200, ss.ErrPolicyFetch, "not a valid policy"},
		{"html 404", "<html><body>Not found</body></html>", 404, ss.ErrPolicyFetch, "404"},
		{"truncated", ps.policyText("2", "fetched")[:40], 200, ss.ErrPolicyFetch, "not a valid policy"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ps.set(func(ps *policyServer) { ps.body, ps.status = c.body, c.status })
			orig := mustPolicy(t, ps.policyText("1", "old"))
			rt := newRuntime(t, ss.Config{Policy: orig, PolicyFetch: ss.PolicyFetchConfig{NoFetchAtStart: true, MaxSize: 1000}})
			p, err := rt.FetchPolicy(context.Background())
			if p != nil || !errors.Is(err, ss.ErrPolicyFetch) || !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("FetchPolicy = %v, %v; want an error wrapping %v containing %q", p, err, c.want, c.text)
			}
			o := nextFetch(t, rt)
			if o.Policy != nil || !errors.Is(o.Err, c.want) {
				t.Fatalf("outcome %+v", o)
			}
			if rt.Policy() != orig {
				t.Fatal("the installed policy changed")
			}
			if got := getHello(t, rt, "old"); got != "hello" {
				t.Fatalf("old streamtype after the failure: %q", got)
			}
		})
	}
}

// TestFetchPolicySigned: with Keys set, a policy signed by a configured
// key (signature file or header) is installed; a bad signature and an
// older release are refused.
func TestFetchPolicySigned(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	sign := func(k ed25519.PrivateKey, body string) string {
		return base64.StdEncoding.EncodeToString(ed25519.Sign(k, []byte(body)))
	}
	ps := newPolicyServer(t)
	orig := mustPolicy(t, ps.policyText("2026.9", "old"))
	for _, header := range []bool{false, true} {
		t.Run(map[bool]string{false: "sig file", true: "header"}[header], func(t *testing.T) {
			cfg := ss.PolicyFetchConfig{NoFetchAtStart: true, Keys: []ed25519.PublicKey{pub}}
			if header {
				cfg.SignatureMetadata = "sig"
			}
			rt := newRuntime(t, ss.Config{Policy: orig, PolicyFetch: cfg})
			fetch := func(release string, key ed25519.PrivateKey) (*policy.Policy, error) {
				body := ps.policyText(release, "r"+strings.ReplaceAll(release, ".", "_"))
				ps.set(func(ps *policyServer) { ps.body, ps.status, ps.sig = body, 200, sign(key, body) })
				return rt.FetchPolicy(context.Background())
			}
			if p, err := fetch("2026.10", other); !errors.Is(err, ss.ErrPolicySignature) || p != nil {
				t.Fatalf("signed by another key: %v, %v", p, err)
			}
			if rt.Policy() != orig {
				t.Fatal("badly signed policy installed")
			}
			// Also older than the initial policy's release.
			if _, err := fetch("2026.8", priv); !errors.Is(err, ss.ErrPolicyReplay) {
				t.Fatalf("release older than the initial one: %v", err)
			}
			p, err := fetch("2026.10", priv)
			if err != nil || p.Release != "2026.10" || rt.Policy() != p {
				t.Fatalf("good signature: %v, %v", p, err)
			}
			// A replay of the older, validly signed release is refused.
			if p, err := fetch("2026.9", priv); !errors.Is(err, ss.ErrPolicyReplay) || p != nil {
				t.Fatalf("replayed older release: %v, %v", p, err)
			}
			if rt.Policy().Release != "2026.10" {
				t.Fatalf("installed release %q after the replay", rt.Policy().Release)
			}
			// The same release again is not a replay (a restart fetches it).
			if _, err := fetch("2026.10", priv); err != nil {
				t.Fatalf("same release again: %v", err)
			}
		})
	}
}
