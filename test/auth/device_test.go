package auth_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/auth"
	"github.com/securestreams/ss/policy"
)

// The http_dsn/fwv/devtype headers carry the store's device identity as
// it is at each attempt: Config.Device seeds it, Blobs().SetDevice (what
// ssproxy does on SIGHUP) changes what the next request sends.
func TestDeviceHeadersFollowStore(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("X-Dsn")+"|"+r.Header.Get("X-Fwv")+"|"+r.Header.Get("X-Devtype"))
		mu.Unlock()
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	js := fmt.Sprintf(`{
  "release": "t", "product": "t", "schema-version": 1,
  "retry": [{"default": {"backoff": [50], "conceal": 1, "jitterpc": 0}}],
  "s": [{"api": {"endpoint": "127.0.0.1", "port": %s, "protocol": "h1", "tls": false,
    "http_method": "GET", "http_url": "api", "retry": "default",
    "http_dsn_header": "x-dsn:", "http_fwv_header": "x-fwv:", "http_devtype_header": "x-devtype:"}}]}`, u.Port())
	p, diags, err := policy.Parse([]byte(js), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diags {
		t.Errorf("policy: %v", d)
	}
	rt := newRuntime(t, ss.Config{Policy: p, Device: auth.Device{Serial: "SN-1", FirmwareVersion: "1.0", Type: "sensor"}})
	get := func() string {
		t.Helper()
		s := create(t, rt, "api")
		if err := s.s.Connect(); err != nil {
			t.Fatal(err)
		}
		s.until(10*time.Second, ss.Disconnected)
		mu.Lock()
		defer mu.Unlock()
		if len(seen) == 0 {
			t.Fatal("the server saw no request")
		}
		return seen[len(seen)-1]
	}
	if got := get(); got != "SN-1|1.0|sensor" {
		t.Fatalf("first request headers %q, want the Config.Device values", got)
	}
	if err := rt.Blobs().SetDevice(ctxT(t), auth.Device{Serial: "SN-2", FirmwareVersion: "2.0", Type: "meter"}); err != nil {
		t.Fatal(err)
	}
	if got := get(); got != "SN-2|2.0|meter" {
		t.Fatalf("request after SetDevice sent %q, want the store's new identity", got)
	}
}
