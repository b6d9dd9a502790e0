package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/testutil"
	"github.com/securestreams/ss/internal/testutil/ssproxytest"
)

// TestDaemonHoldUntilOnline: with -hold-until-online, an onward stream does
// not connect while captive portal detection says CaptivePortal; after the
// portal is gone, SIGHUP re-checks, the state is InternetOK and the stream
// connects.
func TestDaemonHoldUntilOnline(t *testing.T) {
	var conns atomic.Int32
	echo := testutil.Listen(t, "tcp", "", nil, func(c net.Conn) { conns.Add(1); testutil.Echo(c) })
	var online atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if online.Load() {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		http.Redirect(w, r, "/login", http.StatusFound)
	}))
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "p.json")
	writeFile(t, file, fmt.Sprintf(`{"s": [
	{"captive_portal_detect": {"protocol": "h1", "endpoint": %q, "http_method": "GET", "http_url": "generate_204",
		"http_expect": 204, "http_fail_redirect": true, "opportunistic": true}},
	{"app": {"protocol": "raw", "endpoint": "127.0.0.1", "port": %d, "nailed_up": true}}]}`, srv.Listener.Addr().String(), echo.Port()))
	d := startDaemon(t, file, "-hold-until-online")
	d.WaitLog(t, 10*time.Second, "ssproxy: network state", "state=CaptivePortal")
	link := ssproxytest.MustDial(t, d.Address)
	defer link.Close()
	link.MustCreate(t, "app")
	time.Sleep(500 * time.Millisecond)
	if n := conns.Load(); n != 0 {
		t.Fatalf("the onward stream connected behind a captive portal (%d connections)", n)
	}
	online.Store(true)
	d.Signal(t, syscall.SIGHUP)
	d.WaitLog(t, 10*time.Second, "ssproxy: network state", "state=InternetOK")
	if err := link.WaitState(event.Connected, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if code, _ := d.Stop(t, syscall.SIGTERM, 5*time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
}
