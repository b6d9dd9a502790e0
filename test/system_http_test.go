package test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/policy"
)

// sysH1 is an h1 client streamtype for the loopback test server at hostport.
func sysH1(name, hostport, url string) *policy.Streamtype {
	host, port, _ := net.SplitHostPort(hostport)
	p, _ := strconv.Atoi(port)
	return &policy.Streamtype{Name: name, Protocol: policy.H1, Endpoint: host, Port: uint16(p), HTTPMethod: "GET", HTTPURL: url, ClientCert: -1}
}

// sysDeclare adds metadata items (name → header mapping, "" for none).
func sysDeclare(st *policy.Streamtype, pairs ...string) {
	for i := 0; i+1 < len(pairs); i += 2 {
		st.Metadata = append(st.Metadata, &policy.MetadataItem{Name: pairs[i], Header: strings.TrimSuffix(pairs[i+1], ":"), HeaderRaw: pairs[i+1], Index: len(st.Metadata)})
	}
}

// sysTransaction runs one HTTP transaction of streamtype name to its
// DISCONNECTED, destroys the stream and returns its events.
func sysTransaction(t *testing.T, rt *ss.Runtime, name string) *recorder {
	t.Helper()
	s, err := rt.Create(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	r := record(t, s)
	s.RequestTx()
	r.untilState(10*time.Second, ss.Disconnected)
	s.Destroy(context.Background())
	r.closed(5 * time.Second)
	return r
}

// TestHTTPExpectMismatchRetried: a status other than http_expect is a
// connection failure: UNREACHABLE after each attempt, retried per the
// retry policy, then ALL_RETRIES_FAILED; no CONNECTED, no QOS state.
func TestHTTPExpectMismatchRetried(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusOK) // not the expected 204
	}))
	defer srv.Close()
	st := sysH1("exp", srv.Listener.Addr().String(), "/generate_204")
	st.HTTPExpect = 204
	st.Retry = retry(2, 0, 50)
	rt := newRuntime(t, ss.Config{Policy: newPolicy(st)})
	s, err := rt.Create(context.Background(), "exp")
	if err != nil {
		t.Fatal(err)
	}
	r := record(t, s)
	if err := s.RequestTx(); err != nil {
		t.Fatal(err)
	}
	r.untilState(10*time.Second, ss.AllRetriesFailed)
	r.expect("CREATING", "POLL", "CONNECTING", "UNREACHABLE", "POLL", "CONNECTING", "UNREACHABLE",
		"POLL", "CONNECTING", "UNREACHABLE", "ALL_RETRIES_FAILED")
	if n := hits.Load(); n != 3 {
		t.Errorf("server saw %d requests, want 3", n)
	}
	s.Destroy(context.Background())
	r.closed(5 * time.Second)
}

// TestStatusMetadata: ":status" (by name, and by pseudo-header mapping)
// holds the response status after CONNECTED, for 200 and 404; the 404's
// QOS_NACK_REMOTE has the *ss.StatusError in Event.Err.
func TestStatusMetadata(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	src := `{"s": [{"st": {"endpoint": "` + srv.Listener.Addr().String() + `", "protocol": "h1", "http_method": "GET",
		"http_url": "${path}", "url_preencoded": ["path"], "metadata": [{"path": ""}, {":status": ""}, {"code": ":status"}]}}]}`
	pol, diags, err := policy.Parse([]byte(src), policy.Options{Strict: true})
	if err != nil {
		t.Fatalf("%v %v", err, diags)
	}
	rt := newRuntime(t, ss.Config{Policy: pol})
	for _, c := range []struct {
		path, status, final string
	}{{"/ok", "200", "QOS_ACK_REMOTE"}, {"/missing", "404", "QOS_NACK_REMOTE"}} {
		s, err := rt.Create(context.Background(), "st", ss.WithMetadata("path", c.path))
		if err != nil {
			t.Fatal(err)
		}
		r := record(t, s)
		s.RequestTx()
		r.untilState(10*time.Second, ss.Connected)
		for _, name := range []string{":status", "code"} {
			if v, ok := s.Metadata(name); !ok || v != c.status {
				t.Errorf("%s: metadata %q = %q, %v; want %s", c.path, name, v, ok, c.status)
			}
		}
		ev := r.until(10*time.Second, func(ev ss.Event) bool { return ev.Kind == ss.StateEvent && ev.State.String() == c.final })
		// A NACK carries the status in Event.Err; an ACK carries nothing.
		var se *ss.StatusError
		if c.final == "QOS_NACK_REMOTE" {
			if !errors.As(ev.Err, &se) || se.Code != 404 {
				t.Errorf("%s: NACK Err = %v, want a *ss.StatusError 404", c.path, ev.Err)
			}
		} else if ev.Err != nil {
			t.Errorf("%s: ACK Err = %v", c.path, ev.Err)
		}
		s.Destroy(context.Background())
		r.closed(5 * time.Second)
	}
}

// TestCookieRoundTrip: with no Config.Cookies, an http_cookies streamtype
// stores Set-Cookie in the runtime's own jar and sends it back; a
// streamtype without the flag neither sends nor stores; another runtime
// has its own jar.
func TestCookieRoundTrip(t *testing.T) {
	got := make(chan string, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.URL.Path + " " + r.Header.Get("Cookie")
		if r.URL.Path == "/login" {
			http.SetCookie(w, &http.Cookie{Name: "session", Value: "s3cr3t", Path: "/"})
		}
	}))
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	login, again, plain := sysH1("login", addr, "/login"), sysH1("again", addr, "/again"), sysH1("plain", addr, "/plain")
	login.HTTPCookies, again.HTTPCookies = true, true
	pol := newPolicy(login, again, plain)
	rt := newRuntime(t, ss.Config{Policy: pol})
	other := newRuntime(t, ss.Config{Policy: pol})
	do := func(rt *ss.Runtime, name string) string {
		t.Helper()
		sysTransaction(t, rt, name)
		select {
		case v := <-got:
			return v
		case <-time.After(5 * time.Second):
			t.Fatal("no request")
			return ""
		}
	}
	for _, c := range []struct {
		rt         *ss.Runtime
		name, want string
	}{
		{rt, "login", "/login "},
		{rt, "again", "/again session=s3cr3t"},
		{rt, "plain", "/plain "},
		{other, "again", "/again "},
	} {
		if v := do(c.rt, c.name); v != c.want {
			t.Errorf("%s: server saw %q, want %q", c.name, v, c.want)
		}
	}
}
