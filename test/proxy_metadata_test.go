package test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/policy"
)

// scenarioH1MetadataWriters: a header-mapped metadata item keeps what the
// application set apart from what the server sent (docs/streams.md §9.2,
// §9.4). Metadata returns the captured response header once it arrives,
// and the application's value again once it sets one; every request sends
// the application's value, never the captured one (with one slot for both,
// the second request sent the first response's value back).
func scenarioH1MetadataWriters(t *testing.T, bin string) {
	sent := make(chan string, 16)
	var n atomic.Int32
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sent <- r.Header.Get("X-Tag")
		w.Header().Set("X-Tag", fmt.Sprintf("peer%d", n.Add(1)))
		io.WriteString(w, "ok")
	}))
	t.Cleanup(hs.Close)
	pol, _, err := policy.Parse([]byte(fmt.Sprintf(`{"schema-version": 1, "s": [{"mdw": {
		"protocol": "h1", "endpoint": %q, "http_method": "GET", "http_url": "md",
		"metadata": [{"tag": "x-tag:"}]}}]}`, strings.TrimPrefix(hs.URL, "http://"))), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	bothWays(t, bin, pol, func(t *testing.T, rt *ss.Runtime) {
		ctx := context.Background()
		s, err := rt.Create(ctx, "mdw", ss.WithMetadata("tag", "app1"))
		if err != nil {
			t.Fatal(err)
		}
		r := record(t, s)
		transaction := func(want string) {
			t.Helper()
			if err := s.RequestTx(); err != nil {
				t.Fatal(err)
			}
			r.untilState(wait, ss.Disconnected)
			if got := <-sent; got != want {
				t.Fatalf("request sent x-tag %q, want the application's %q", got, want)
			}
			if v, ok := s.Metadata("tag"); !ok || !strings.HasPrefix(v, "peer") {
				t.Fatalf("Metadata(tag) = %q %v after the response, want the captured peerN", v, ok)
			}
		}
		transaction("app1")
		transaction("app1")
		if err := s.SetMetadata("tag", "app2"); err != nil {
			t.Fatal(err)
		}
		if v, ok := s.Metadata("tag"); !ok || v != "app2" {
			t.Fatalf("Metadata(tag) = %q %v after SetMetadata, want app2", v, ok)
		}
		transaction("app2")
		s.Destroy(ctx)
		r.closed(wait)
	})
}
