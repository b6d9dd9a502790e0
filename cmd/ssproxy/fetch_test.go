package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/securestreams/ss/internal/testutil"
	"github.com/securestreams/ss/internal/testutil/ssproxytest"
)

// TestDaemonFetchPolicy: with -fetch (and -fetch-key), ssproxy fetches the
// policy from its fetch_policy streamtype before it accepts links, so a
// streamtype only the fetched policy has can be created at once; a policy
// signed by another key is refused and the file's policy kept.
func TestDaemonFetchPolicy(t *testing.T) {
	echo := testutil.Listen(t, "tcp", "", nil, testutil.Echo)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	var mu sync.Mutex
	var body, sig string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		b, s := body, sig
		mu.Unlock()
		switch r.URL.Path {
		case "/policy.json":
			w.Write([]byte(b))
		case "/policy.json.sig":
			w.Write([]byte(s))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	fetchST := fmt.Sprintf(`{"fetch_policy": {"protocol": "h1", "endpoint": %q, "http_method": "GET", "http_url": "policy.json", "opportunistic": true}}`, srv.Listener.Addr().String())
	file := filepath.Join(t.TempDir(), "p.json")
	writeFile(t, file, `{"release": "1", "s": [`+fetchST+`, {"shipped": {"protocol": "raw", "endpoint": "127.0.0.1", "port": 1}}]}`)
	keys := filepath.Join(t.TempDir(), "keys")
	writeFile(t, keys, "# vendor key\n"+base64.StdEncoding.EncodeToString(pub)+"\n")

	for _, c := range []struct {
		name   string
		signer ed25519.PrivateKey
	}{{"signed", priv}, {"wrong key", other}} {
		t.Run(c.name, func(t *testing.T) {
			mu.Lock()
			body = fmt.Sprintf(`{"release": "2", "s": [%s, {"fetched": {"protocol": "raw", "endpoint": "127.0.0.1", "port": %d}}]}`, fetchST, echo.Port())
			sig = base64.StdEncoding.EncodeToString(ed25519.Sign(c.signer, []byte(body)))
			mu.Unlock()
			d := startDaemon(t, file, "-fetch", "-fetch-key", keys)
			link := ssproxytest.MustDial(t, d.Address)
			defer link.Close()
			if c.signer.Equal(priv) {
				// Logged before "listening": the fetch ran first.
				log := d.WaitLog(t, time.Second, "policy loaded", "source=fetch_policy", "client=")
				if !strings.Contains(log, "fetched") {
					t.Errorf("summary %q lacks the fetched streamtype", log)
				}
				link.MustCreate(t, "fetched")
				if err := link.RoundTrip([]byte("hi"), 10*time.Second); err != nil {
					t.Fatal(err)
				}
			} else {
				d.WaitLog(t, time.Second, "level=WARN", "fetch_policy failed", "signature")
				if cr, err := link.Create("fetched", 5*time.Second); err != nil || cr.OK() {
					t.Fatalf("fetched streamtype exists after a refused fetch: %v, %v", cr, err)
				}
				link2 := ssproxytest.MustDial(t, d.Address)
				defer link2.Close()
				link2.MustCreate(t, "shipped")
			}
			if code, _ := d.Stop(t, syscall.SIGTERM, 5*time.Second); code != 0 {
				t.Errorf("exit %d", code)
			}
		})
	}
}
