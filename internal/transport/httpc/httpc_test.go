package httpc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

func TestGet200(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/x" || r.URL.RawQuery != "a=1" {
			http.Error(w, "bad path "+r.URL.String(), 400)
			return
		}
		io.WriteString(w, "hello")
	})
	forEachProto(t, h, func(t *testing.T, s *server, p policy.Protocol) {
		st := s.streamtype(p, "v1/x?a=1")
		res, rec := runOnce(t, st, attempt(st, testEnv(), nil))
		if res.Err != nil || !res.Completed {
			t.Fatalf("result %+v", res)
		}
		eq(t, rec.seq(), []string{"CONNECTED", "rx(SOM,hello)", "rx(EOM,)", "QOS_ACK_REMOTE"})
	})
}

func TestGetPlainH1(t *testing.T) {
	s := startServer(t, policy.H1, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "plain")
	}))
	for _, p := range []policy.Protocol{policy.H1, policy.H2} { // h2 without TLS is h1
		st := s.streamtype(p, "/")
		res, rec := runOnce(t, st, attempt(st, testEnv(), nil))
		if res.Err != nil || !res.Completed {
			t.Fatalf("%v: result %+v", p, res)
		}
		eq(t, rec.seq(), []string{"CONNECTED", "rx(SOM,plain)", "rx(EOM,)", "QOS_ACK_REMOTE"})
	}
}

func TestStatusHandling(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/404":
			w.WriteHeader(404)
			io.WriteString(w, "nope")
		case "/530":
			w.WriteHeader(530)
			io.WriteString(w, "mapped")
		case "/204":
			w.WriteHeader(204)
		case "/200empty":
		}
	})
	forEachProto(t, h, func(t *testing.T, s *server, p policy.Protocol) {
		t.Run("404", func(t *testing.T) {
			st := s.streamtype(p, "/404")
			res, rec := runOnce(t, st, attempt(st, testEnv(), nil))
			// Completed (NACK), with the status as the cause.
			var se *StatusError
			if !errors.As(res.Err, &se) || se.Code != 404 || !res.Completed {
				t.Fatalf("result %+v, want Completed with a *StatusError 404", res)
			}
			eq(t, rec.seq(), []string{"CONNECTED", "rx(SOM,nope)", "rx(EOM,)", "QOS_NACK_REMOTE"})
		})
		t.Run("respmap", func(t *testing.T) {
			st := s.streamtype(p, "/530")
			st.HTTPRespMap = []policy.RespMapEntry{{Status: 404, State: 1404}, {Status: 530, State: 1530}}
			_, rec := runOnce(t, st, attempt(st, testEnv(), nil))
			eq(t, rec.seq(), []string{"USER(1530)", "CONNECTED", "rx(SOM,mapped)", "rx(EOM,)", "QOS_NACK_REMOTE"})
		})
		t.Run("expect204", func(t *testing.T) {
			st := s.streamtype(p, "/204")
			st.HTTPExpect = 204
			_, rec := runOnce(t, st, attempt(st, testEnv(), nil))
			eq(t, rec.seq(), []string{"CONNECTED", "QOS_ACK_REMOTE"})
		})
		t.Run("expect204got200", func(t *testing.T) {
			// A status other than http_expect fails the attempt: no
			// CONNECTED, no rx, a *StatusError naming both codes.
			st := s.streamtype(p, "/200empty")
			st.HTTPExpect = 204
			res, rec := runOnce(t, st, attempt(st, testEnv(), nil))
			var se *StatusError
			if !errors.As(res.Err, &se) || se.Code != 200 || !strings.Contains(res.Err.Error(), "http_expect is 204") || res.Completed {
				t.Fatalf("result %+v, want a StatusError 200 (expected 204)", res)
			}
			eq(t, rec.seq(), nil)
		})
		t.Run("status", func(t *testing.T) {
			// ":status" items (by name or by pseudo-header mapping) get the
			// response status; the mapping is never sent as a header.
			st := s.streamtype(p, "/404")
			declare(st, ":status", "", "code", ":status")
			a := attempt(st, testEnv(), nil)
			a.Metadata[1] = transport.MetadataValue{Value: "999", Set: true}
			_, rec := runOnce(t, st, a)
			if rec.meta[":status"] != "404" || rec.meta["code"] != "404" {
				t.Fatalf("metadata %v, want :status and code 404", rec.meta)
			}
			eq(t, rec.seq(), []string{"CONNECTED", "rx(SOM,nope)", "rx(EOM,)", "QOS_NACK_REMOTE"})
		})
	})
}

// bodyEcho answers with what it saw of the request body framing.
func bodyEcho(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	te := strings.Join(r.TransferEncoding, ",")
	cl := r.Header.Values("Content-Length")
	if r.ProtoMajor == 1 {
		// net/http removes Content-Length from the map; recover it.
		if r.ContentLength >= 0 && len(cl) == 0 && te == "" {
			cl = []string{strconv.FormatInt(r.ContentLength, 10)}
		}
	}
	w.Header().Set("X-Len", strconv.Itoa(len(b)))
	w.Header().Set("X-TE", te)
	w.Header().Set("X-CL", strconv.FormatInt(r.ContentLength, 10))
	w.Header().Set("X-CT", r.Header.Get("Content-Type"))
	w.Header().Set("X-Method", r.Method)
	io.WriteString(w, "got "+strconv.Itoa(len(b)))
}

func TestPostBodies(t *testing.T) {
	forEachProto(t, http.HandlerFunc(bodyEcho), func(t *testing.T, s *server, p policy.Protocol) {
		mk := func() *policy.Streamtype {
			st := s.streamtype(p, "/post")
			st.HTTPMethod = "POST"
			declare(st, "len", "x-len:", "te", "x-te:", "cl", "x-cl:", "ct", "x-ct:")
			return st
		}
		t.Run("whole", func(t *testing.T) {
			st := mk()
			res, rec := runOnce(t, st, attempt(st, testEnv(), whole("hello world")))
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			eq(t, rec.seq(), []string{"CONNECTED", "rx(SOM,got 11)", "rx(EOM,)", "QOS_ACK_REMOTE"})
			if rec.meta["cl"] != "11" || rec.meta["te"] != "" {
				t.Fatalf("framing %v", rec.meta)
			}
		})
		t.Run("lenhint2500", func(t *testing.T) {
			st := mk()
			sc := pieces(strings.Repeat("a", 1000), strings.Repeat("b", 1000), strings.Repeat("c", 500))
			sc.hint = 2500
			res, rec := runOnce(t, st, attempt(st, testEnv(), sc))
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			if rec.meta["cl"] != "2500" || rec.meta["len"] != "2500" || rec.meta["te"] != "" {
				t.Fatalf("framing %v", rec.meta)
			}
		})
		t.Run("unknown", func(t *testing.T) {
			st := mk()
			res, rec := runOnce(t, st, attempt(st, testEnv(), pieces("ab", "cd", "ef")))
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			want := "-1"
			if rec.meta["cl"] != want || rec.meta["len"] != "6" {
				t.Fatalf("framing %v", rec.meta)
			}
			if p == policy.H1 && rec.meta["te"] != "chunked" {
				t.Fatalf("h1 unknown length not chunked: %v", rec.meta)
			}
		})
		t.Run("nocontentlength", func(t *testing.T) {
			st := mk()
			st.HTTPNoContentLength = true
			res, rec := runOnce(t, st, attempt(st, testEnv(), whole("xyz")))
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			if rec.meta["cl"] != "-1" || rec.meta["len"] != "3" {
				t.Fatalf("framing %v", rec.meta)
			}
		})
		t.Run("lengthmismatch", func(t *testing.T) {
			st := mk()
			sc := pieces("abc", "def")
			sc.hint = 10
			res, rec := runOnce(t, st, attempt(st, testEnv(), sc))
			if !errors.Is(res.Err, ErrBodyLength) || res.Completed {
				t.Fatalf("result %+v", res)
			}
			eq(t, rec.seq(), nil)
		})
		t.Run("getnobody", func(t *testing.T) {
			st := mk()
			st.HTTPMethod = "GET"
			sc := whole("ignored")
			_, rec := runOnce(t, st, attempt(st, testEnv(), sc))
			if rec.meta["len"] != "0" || rec.meta["method"] != "" {
				t.Fatalf("framing %v", rec.meta)
			}
			if len(sc.chunks) != 1 {
				t.Fatal("GET consumed tx chunks")
			}
		})
	})
}

func TestFormURLEncoded(t *testing.T) {
	var mu sync.Mutex
	var raw string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		mu.Lock()
		raw = r.Header.Get("Content-Type") + "|" + strconv.FormatInt(r.ContentLength, 10) + "|" + r.PostForm.Get("a") + "|" + strings.Join(r.TransferEncoding, ",")
		mu.Unlock()
	})
	forEachProto(t, h, func(t *testing.T, s *server, p policy.Protocol) {
		st := s.streamtype(p, "/form")
		st.HTTPMethod = "POST"
		st.HTTPWWWFormURLEncoded = true
		st.HTTPNoContentLength = true // still exactly one Content-Length
		res, _ := runOnce(t, st, attempt(st, testEnv(), pieces("a=hel", "lo&b=2")))
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		mu.Lock()
		defer mu.Unlock()
		if raw != "application/x-www-form-urlencoded|11|hello|" {
			t.Fatalf("server saw %q", raw)
		}
	})
}

// TestH1WireHeaders checks the exact h1 header block on a raw listener:
// no User-Agent/Accept-Encoding, Connection: close, one Content-Length,
// names as given, mapped metadata in declaration order.
func TestH1WireHeaders(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		var lines []string
		for {
			l, err := br.ReadString('\n')
			if err != nil || l == "\r\n" {
				break
			}
			lines = append(lines, strings.TrimRight(l, "\r\n"))
		}
		body := make([]byte, 11)
		io.ReadFull(br, body)
		got <- append(lines, "BODY:"+string(body))
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
	}()
	st := &policy.Streamtype{
		Name: "w", Protocol: policy.H1, Endpoint: "127.0.0.1", Port: uint16(ln.Addr().(*net.TCPAddr).Port),
		ClientCert: -1, HTTPMethod: "POST", HTTPURL: "/w", HTTPWWWFormURLEncoded: true,
		HTTPAuthHeader: "X-Auth", HTTPAuthPreamble: "Bearer ", AuthHexify: true,
		HTTPDSNHeader: "X-DSN", HTTPFWVHeader: "X-FWV", HTTPDevtypeHeader: "X-Dev",
		DirectProtoStr: true,
	}
	declare(st, "zeta", "X-Zeta:", "alpha", "x-Alpha:", "unset", "X-Unset:", "holder", "")
	env := testEnv()
	env.Token = func(slot int) []byte { return []byte("AB") }
	env.Device = transport.Device{Serial: "sn1", FirmwareVersion: "1.2", Type: "dev"}
	a := attempt(st, env, whole("a=1&b=22222"), "zeta", "z", "alpha", "a", "holder", "h", "x-direct:", "d")
	res, rec := runOnce(t, st, a)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	eq(t, rec.seq(), []string{"CONNECTED", "rx(SOM,ok)", "rx(EOM,)", "QOS_ACK_REMOTE"})
	lines := <-got
	want := []string{
		"POST /w HTTP/1.1",
		"Host: 127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port),
		"X-Auth: Bearer 4142",
		"X-DSN: sn1",
		"X-FWV: 1.2",
		"X-Dev: dev",
		"X-Zeta: z",
		"x-Alpha: a",
		"x-direct: d",
		"Connection: close",
		"Content-Type: application/x-www-form-urlencoded",
		"Content-Length: 11",
		"BODY:a=1&b=22222",
	}
	eq(t, lines, want)
}

func TestHeadersBothWays(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Reply", "echo:"+r.Header.Get("X-Req"))
		w.Header().Set("X-Direct-Resp", "dr:"+r.Header.Get("X-Direct"))
		w.Header().Set("X-Dev", r.Header.Get("X-Dev")+"/"+r.Header.Get("X-Serial")+"/"+r.Header.Get("X-Fw"))
		w.Header().Set("X-Auth-Seen", r.Header.Get("Authorization"))
		w.Header().Set("X-UA", strconv.Itoa(len(r.Header.Values("User-Agent")))+","+strconv.Itoa(len(r.Header.Values("Accept-Encoding"))))
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "x")
	})
	forEachProto(t, h, func(t *testing.T, s *server, p policy.Protocol) {
		st := s.streamtype(p, "/")
		declare(st, "req", "x-req:", "reply", "X-Reply:", "dev", "x-dev:", "auth", "x-auth-seen:", "ua", "x-ua:", "ctype", "content-type:")
		st.DirectProtoStr = true
		st.HTTPAuthHeader = "authorization:"
		st.HTTPAuthPreamble = "Bearer "
		st.UseAuth = &policy.Auth{Name: "a", Blob: 2}
		st.HTTPDevtypeHeader, st.HTTPDSNHeader, st.HTTPFWVHeader = "x-dev", "x-serial", "x-fw"
		env := testEnv()
		env.Token = func(slot int) []byte { return []byte("tok" + strconv.Itoa(slot)) }
		env.Device = transport.Device{Serial: "S", FirmwareVersion: "F", Type: "T"}
		a := attempt(st, env, nil, "req", "hi", "reply", "app-set", "x-direct:", "dv")
		res, rec := runOnce(t, st, a)
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		m := rec.meta
		if m["reply"] != "echo:hi" || m["dev"] != "T/S/F" || m["auth"] != "Bearer tok2" || m["ua"] != "0,0" || m["ctype"] != "text/plain" || m["x-direct-resp:"] != "dr:dv" {
			t.Fatalf("metadata %v", m)
		}
		// Captured metadata comes before CONNECTED.
		all := rec.all()
		for i, e := range all {
			if e == "CONNECTED" {
				for _, later := range all[i:] {
					if strings.HasPrefix(later, "meta(") {
						t.Fatalf("metadata after CONNECTED: %q", all)
					}
				}
			}
		}
	})
}

func TestCookies(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie("sess")
		if err != nil {
			http.SetCookie(w, &http.Cookie{Name: "sess", Value: "v42", Path: "/"})
			io.WriteString(w, "set")
			return
		}
		io.WriteString(w, "have "+c.Value)
	})
	forEachProto(t, h, func(t *testing.T, s *server, p policy.Protocol) {
		jar, _ := cookiejar.New(nil)
		env := testEnv()
		env.Cookies = jar
		st := s.streamtype(p, "/c")
		st.HTTPCookies = true
		c := New(p, env)
		defer c.Close(context.Background())
		for i, want := range []string{"set", "have v42"} {
			rec := newRecorder()
			res := c.Run(context.Background(), attempt(st, env, nil), rec)
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			if string(rec.rx[0]) != want {
				t.Fatalf("transaction %d: %q", i, rec.rx[0])
			}
		}
		// Without http_cookies nothing is sent.
		st2 := s.streamtype(p, "/c")
		rec := newRecorder()
		c.Run(context.Background(), attempt(st2, env, nil), rec)
		if string(rec.rx[0]) != "set" {
			t.Fatalf("cookie sent without http_cookies: %q", rec.rx[0])
		}
	})
}

func TestRedirects(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/r302":
			http.Redirect(w, r, "/final", http.StatusFound)
		case "/r307":
			http.Redirect(w, r, "/final", http.StatusTemporaryRedirect)
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		case "/final":
			b, _ := io.ReadAll(r.Body)
			io.WriteString(w, r.Method+":"+string(b))
		}
	})
	forEachProto(t, h, func(t *testing.T, s *server, p policy.Protocol) {
		t.Run("refused", func(t *testing.T) {
			st := s.streamtype(p, "/r302")
			res, rec := runOnce(t, st, attempt(st, testEnv(), nil))
			if !errors.Is(res.Err, ErrRedirect) || res.Completed {
				t.Fatalf("result %+v", res)
			}
			eq(t, rec.seq(), nil)
		})
		t.Run("failredirect", func(t *testing.T) {
			st := s.streamtype(p, "/r302")
			st.AllowRedirects, st.HTTPFailRedirect = true, true
			res, _ := runOnce(t, st, attempt(st, testEnv(), nil))
			if !errors.Is(res.Err, ErrRedirect) {
				t.Fatalf("result %+v", res)
			}
		})
		t.Run("followed302", func(t *testing.T) {
			st := s.streamtype(p, "/r302")
			st.AllowRedirects = true
			st.HTTPMethod = "POST"
			res, rec := runOnce(t, st, attempt(st, testEnv(), whole("body")))
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			eq(t, rec.seq(), []string{"CONNECTED", "rx(SOM,GET:)", "rx(EOM,)", "QOS_ACK_REMOTE"})
		})
		t.Run("followed307", func(t *testing.T) {
			st := s.streamtype(p, "/r307")
			st.AllowRedirects = true
			st.HTTPMethod = "POST"
			res, rec := runOnce(t, st, attempt(st, testEnv(), pieces("bo", "dy")))
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			eq(t, rec.seq(), []string{"CONNECTED", "rx(SOM,POST:body)", "rx(EOM,)", "QOS_ACK_REMOTE"})
		})
		t.Run("toomany", func(t *testing.T) {
			st := s.streamtype(p, "/loop")
			st.AllowRedirects = true
			res, _ := runOnce(t, st, attempt(st, testEnv(), nil))
			if !errors.Is(res.Err, ErrRedirect) {
				t.Fatalf("result %+v", res)
			}
		})
	})
}

func TestRetryAfter(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/503":
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(503)
		case "/429date":
			now := time.Now().UTC()
			w.Header().Set("Date", now.Format(http.TimeFormat))
			w.Header().Set("Retry-After", now.Add(5*time.Second).Format(http.TimeFormat))
			w.WriteHeader(429)
		}
	})
	forEachProto(t, h, func(t *testing.T, s *server, p policy.Protocol) {
		st := s.streamtype(p, "/503")
		res, rec := runOnce(t, st, attempt(st, testEnv(), nil))
		var se *StatusError
		if !errors.As(res.Err, &se) || se.Code != 503 || res.RetryAfter != 2*time.Second || res.Completed {
			t.Fatalf("result %+v", res)
		}
		eq(t, rec.seq(), nil)
		st = s.streamtype(p, "/429date")
		res, _ = runOnce(t, st, attempt(st, testEnv(), nil))
		if !errors.As(res.Err, &se) || se.Code != 429 || res.RetryAfter != 5*time.Second {
			t.Fatalf("result %+v", res)
		}
	})
}

func TestRetryAfterParse(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range []struct {
		ra, date string
		want     time.Duration
	}{
		{"", "", 0}, {"7", "", 7 * time.Second}, {"-3", "", 0}, {"junk", "", 0},
		{now.Add(10 * time.Second).Format(http.TimeFormat), "", 10 * time.Second},
		{now.Add(10 * time.Second).Format(http.TimeFormat), now.Add(4 * time.Second).Format(http.TimeFormat), 6 * time.Second},
		{now.Add(-10 * time.Second).Format(http.TimeFormat), "", 0},
	} {
		h := http.Header{}
		if c.ra != "" {
			h.Set("Retry-After", c.ra)
		}
		if c.date != "" {
			h.Set("Date", c.date)
		}
		if got := retryAfter(h, now); got != c.want {
			t.Errorf("Retry-After %q Date %q: %v, want %v", c.ra, c.date, got, c.want)
		}
	}
}

func TestWrongCA(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "x") })
	forEachProto(t, h, func(t *testing.T, s *server, p policy.Protocol) {
		ca, otherCA := cas(t)
		st := s.streamtype(p, "/")
		st.TrustStore = &policy.TrustStore{Name: "other", Pool: otherCA.pool}
		env := testEnv()
		env.SystemRoots = ca.pool // the right CA as "system roots": must not be used
		res, rec := runOnce(t, st, attempt(st, env, nil))
		if res.Err == nil || res.Completed || !transport.IsTLSVerifyError(res.Err) {
			t.Fatalf("result %+v", res)
		}
		eq(t, rec.seq(), nil)
	})
}

func TestRefused(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	for _, p := range []policy.Protocol{policy.H1, policy.H2} {
		st := &policy.Streamtype{Name: "r", Protocol: p, Endpoint: "127.0.0.1", Port: uint16(port), ClientCert: -1, HTTPMethod: "GET", Perf: true}
		res, rec := runOnce(t, st, attempt(st, testEnv(), nil))
		if res.Err == nil {
			t.Fatal("no error")
		}
		eq(t, rec.seq(), []string{"perf(SOM|EOM|PERF_JSON)"})
	}
}

func TestResetMidBody(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100000")
		w.WriteHeader(200)
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		if r.ProtoMajor == 1 {
			c, _, _ := w.(http.Hijacker).Hijack()
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0)
			}
			c.Close()
			return
		}
		time.Sleep(100 * time.Millisecond) // let the data reach the client before the reset
		panic(http.ErrAbortHandler)
	})
	forEachProto(t, h, func(t *testing.T, s *server, p policy.Protocol) {
		st := s.streamtype(p, "/")
		res, rec := runOnce(t, st, attempt(st, testEnv(), nil))
		if res.Err == nil || res.Completed {
			t.Fatalf("result %+v", res)
		}
		eq(t, rec.seq(), []string{"CONNECTED", "rx(SOM,partial)"})
	})
}

func TestBodyIdleTimeout(t *testing.T) {
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	forEachProto(t, h, func(t *testing.T, s *server, p policy.Protocol) {
		env := testEnv()
		env.BodyIdleTimeout = 300 * time.Millisecond
		st := s.streamtype(p, "/")
		res, rec := runOnce(t, st, attempt(st, env, nil))
		if !errors.Is(res.Err, ErrTimeout) {
			t.Fatalf("result %+v", res)
		}
		eq(t, rec.seq(), []string{"CONNECTED", "rx(SOM,first)"})
	})
}

func TestHeaderTimeout(t *testing.T) {
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	forEachProto(t, h, func(t *testing.T, s *server, p policy.Protocol) {
		env := testEnv()
		env.HeaderTimeout = 300 * time.Millisecond
		st := s.streamtype(p, "/")
		res, rec := runOnce(t, st, attempt(st, env, nil))
		if !errors.Is(res.Err, ErrTimeout) {
			t.Fatalf("result %+v", res)
		}
		eq(t, rec.seq(), nil)
	})
}

func TestMultipartOut(t *testing.T) {
	type part struct{ name, file, ctype, data string }
	var mu sync.Mutex
	var parts []part
	var te string
	var cl int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "multipart/form-data" || len(params["boundary"]) < 16 || len(params["boundary"]) > 40 {
			http.Error(w, "bad ctype", 400)
			return
		}
		mr := multipart.NewReader(r.Body, params["boundary"])
		mu.Lock()
		defer mu.Unlock()
		parts = nil
		te, cl = strings.Join(r.TransferEncoding, ","), r.ContentLength
		for {
			p, err := mr.NextPart()
			if err != nil {
				break
			}
			b, _ := io.ReadAll(p)
			parts = append(parts, part{p.FormName(), p.FileName(), p.Header.Get("Content-Type"), string(b)})
		}
	})
	forEachProto(t, h, func(t *testing.T, s *server, p policy.Protocol) {
		st := s.streamtype(p, "/up")
		st.HTTPMethod = "POST"
		st.HTTPMultipartName = "file1"
		st.HTTPMultipartFilename = "a.txt"
		st.HTTPMimeContentType = "text/plain"
		// A rideshare chain: a second part from the next streamtype.
		next := &policy.Streamtype{Name: "next", Protocol: p, HTTPMultipartName: "meta", HTTPMimeContentType: "application/json"}
		st.Rideshare, st.RideshareName = next, "next"
		sc := &script{hint: -1, chunks: []transport.Chunk{
			{Data: []byte("hello "), Flags: event.SOM, Len: -1},
			{Data: []byte("world"), Flags: event.EOM},
			{Data: []byte(`{"k":1}`), Flags: event.SOM | event.EOM, Len: -1},
		}}
		res, rec := runOnce(t, st, attempt(st, testEnv(), sc))
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		eq(t, rec.seq(), []string{"CONNECTED", "QOS_ACK_REMOTE"})
		eq(t, rec.rides, []string{"next"})
		mu.Lock()
		defer mu.Unlock()
		want := []part{{"file1", "a.txt", "text/plain", "hello world"}, {"meta", "", "application/json", `{"k":1}`}}
		if len(parts) != 2 || parts[0] != want[0] || parts[1] != want[1] {
			t.Fatalf("parts %+v", parts)
		}
		if cl != -1 || (p == policy.H1 && te != "chunked") {
			t.Fatalf("framing te=%q cl=%d", te, cl)
		}
	})
}

func TestMultipartIn(t *testing.T) {
	body := "--b\r\nContent-Type: text/plain\r\n\r\npart-one\r\n--b\r\nContent-Type: text/plain\r\n\r\npart-two\r\n--b--\r\n"
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "multipart/related; boundary=b")
		io.WriteString(w, "preamble\r\n"+body+"epilogue")
	})
	forEachProto(t, h, func(t *testing.T, s *server, p policy.Protocol) {
		st := s.streamtype(p, "/")
		st.HTTPMultipartSSIn = true
		res, rec := runOnce(t, st, attempt(st, testEnv(), nil))
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		eq(t, rec.seq(), []string{"CONNECTED", "rx(RELATED_START,)", "rx(SOM|EOM,36 bytes)", "rx(SOM|EOM|RELATED_END,36 bytes)", "QOS_ACK_REMOTE"})
		if string(rec.rx[1]) != "Content-Type: text/plain\r\n\r\npart-one" || string(rec.rx[2]) != "Content-Type: text/plain\r\n\r\npart-two" {
			t.Fatalf("parts %q", rec.rx)
		}
	})
}

func TestSplitMultipartVector(t *testing.T) {
	body := "--b\r\nContent-Type: text/plain\r\n\r\npart-one\r\n--b\r\nContent-Type: text/plain\r\n\r\npart-two\r\n--b--\r\n"
	parts := splitMultipart([]byte(body), "b")
	if len(parts) != 2 || string(parts[0]) != "Content-Type: text/plain\r\n\r\npart-one" || string(parts[1]) != "Content-Type: text/plain\r\n\r\npart-two" {
		t.Fatalf("%q", parts)
	}
}

func TestSigV4(t *testing.T) {
	creds := aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", SessionToken: "sess-token"}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Recompute the signature over host + the x-amz-* headers received.
		sr := &http.Request{Method: r.Method, Host: r.Host, Header: http.Header{}}
		u := *r.URL
		u.Scheme, u.Host = "https", r.Host
		sr.URL = &u
		for k, vs := range r.Header {
			lk := strings.ToLower(k)
			if strings.HasPrefix(lk, "x-amz-") && lk != "x-amz-security-token" {
				sr.Header[k] = vs
			}
		}
		when, _ := time.Parse(amzDateFormat, r.Header.Get("X-Amz-Date"))
		err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken},
			sr, r.Header.Get("X-Amz-Content-Sha256"), "execute-api", "eu-west-1", when)
		if err != nil || sr.Header.Get("Authorization") != r.Header.Get("Authorization") || r.Header.Get("X-Amz-Security-Token") != creds.SessionToken {
			w.WriteHeader(403)
			io.WriteString(w, "want "+sr.Header.Get("Authorization")+" got "+r.Header.Get("Authorization"))
			return
		}
		io.WriteString(w, "signed ok")
	})
	forEachProto(t, h, func(t *testing.T, s *server, p policy.Protocol) {
		st := s.streamtype(p, "/api/v1/items?b=2&a=x%20y")
		st.UseAuth = &policy.Auth{Name: "aws", Type: policy.AuthSigV4, Blob: 1}
		st.AWSRegion, st.AWSService = "region", "service"
		declare(st, "region", "", "service", "", "date", "x-amz-date:", "hash", "X-Amz-Content-Sha256:", "xtra", "x-amz-meta-thing:")
		env := testEnv()
		env.AWSCredentials = func(_ context.Context, slot int) (aws.Credentials, error) {
			if slot != 1 {
				return aws.Credentials{}, nil
			}
			return creds, nil
		}
		now := time.Now().UTC().Format(amzDateFormat)
		a := attempt(st, env, nil, "region", "eu-west-1", "service", "execute-api", "date", now, "hash", "UNSIGNED-PAYLOAD", "xtra", "v")
		res, rec := runOnce(t, st, a)
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		if len(rec.rx) == 0 || string(rec.rx[0]) != "signed ok" {
			t.Fatalf("server: %q", rec.rx)
		}
		eq(t, rec.seq(), []string{"CONNECTED", "rx(SOM,signed ok)", "rx(EOM,)", "QOS_ACK_REMOTE"})
		// Missing x-amz-date: the attempt fails.
		a = attempt(st, env, nil, "region", "eu-west-1", "service", "execute-api", "hash", "UNSIGNED-PAYLOAD")
		res, rec = runOnce(t, st, a)
		if !errors.Is(res.Err, ErrSigV4) {
			t.Fatalf("result %+v", res)
		}
		eq(t, rec.seq(), nil)
	})
}

func TestPerfReport(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "p") })
	forEachProto(t, h, func(t *testing.T, s *server, p policy.Protocol) {
		st := s.streamtype(p, "/")
		st.Perf = true
		_, rec := runOnce(t, st, attempt(st, testEnv(), nil))
		eq(t, rec.seq(), []string{"CONNECTED", "rx(SOM,p)", "rx(EOM,)", "QOS_ACK_REMOTE", "perf(SOM|EOM|PERF_JSON)"})
		var rep struct {
			Peer  string `json:"peer"`
			TLSUS uint32 `json:"tls_us"`
			Prot  struct {
				Protocol string `json:"protocol"`
				Resp     int    `json:"resp"`
			} `json:"prot_specific"`
		}
		if err := json.Unmarshal(rec.rx[len(rec.rx)-1], &rep); err != nil || rep.Peer != "127.0.0.1" || rep.Prot.Resp != 200 || rep.TLSUS == 0 {
			t.Fatalf("report %s (%v)", rec.rx[len(rec.rx)-1], err)
		}
	})
}

func TestRxErrorAborts(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "data") })
	forEachProto(t, h, func(t *testing.T, s *server, p policy.Protocol) {
		st := s.streamtype(p, "/")
		c := New(p, testEnv())
		defer c.Close(context.Background())
		rec := newRecorder()
		rec.rxErr = errors.New("stream going away")
		res := c.Run(context.Background(), attempt(st, testEnv(), nil), rec)
		if res.Err == nil || res.Completed {
			t.Fatalf("result %+v", res)
		}
		eq(t, rec.seq(), []string{"CONNECTED", "rx(SOM,data)"})
	})
}

func TestSharedConnection(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.Proto) })
	for _, p := range []policy.Protocol{policy.H2, policy.H3} {
		t.Run(p.String(), func(t *testing.T) {
			s := startServer(t, p, true, h)
			env := testEnv()
			c := New(p, env)
			defer c.Close(context.Background())
			st := s.streamtype(p, "/")
			var wg sync.WaitGroup
			for i := 0; i < 3; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rec := newRecorder()
					if res := c.Run(context.Background(), attempt(st, env, nil), rec); res.Err != nil {
						t.Error(res.Err)
					}
				}()
				wg.Wait() // sequential: the second reuses the first's connection
			}
			rec := newRecorder()
			c.Run(context.Background(), attempt(st, env, nil), rec)
			want := "HTTP/2.0"
			if p == policy.H3 {
				want = "HTTP/3.0"
			}
			if string(rec.rx[0]) != want {
				t.Fatalf("proto %q", rec.rx[0])
			}
			if p == policy.H2 && s.accepts.Load() != 1 {
				t.Fatalf("%d connections accepted, want 1", s.accepts.Load())
			}
			if n := c.h2poolLen() + c.h3poolLen(); n != 1 {
				t.Fatalf("%d pooled connections", n)
			}
		})
	}
}

func (c *Client) h2poolLen() int {
	if c.h2 == nil {
		return 0
	}
	c.h2.pool.mu.Lock()
	defer c.h2.pool.mu.Unlock()
	return len(c.h2.pool.m)
}

func (c *Client) h3poolLen() int {
	if c.h3 == nil {
		return 0
	}
	c.h3.pool.mu.Lock()
	defer c.h3.pool.mu.Unlock()
	return len(c.h3.pool.m)
}

func TestSharedIdleClose(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "x") })
	for _, p := range []policy.Protocol{policy.H2, policy.H3} {
		t.Run(p.String(), func(t *testing.T) {
			s := startServer(t, p, true, h)
			env := testEnv()
			env.SharedIdleTimeout = 200 * time.Millisecond
			c := New(p, env)
			defer c.Close(context.Background())
			st := s.streamtype(p, "/")
			c.Run(context.Background(), attempt(st, env, nil), newRecorder())
			if c.h2poolLen()+c.h3poolLen() != 1 {
				t.Fatal("not pooled")
			}
			time.Sleep(600 * time.Millisecond)
			if c.h2poolLen()+c.h3poolLen() != 0 {
				t.Fatal("idle connection not closed")
			}
			if res := c.Run(context.Background(), attempt(st, env, nil), newRecorder()); res.Err != nil {
				t.Fatal(res.Err)
			}
			if p == policy.H2 && s.accepts.Load() != 2 {
				t.Fatalf("%d accepts", s.accepts.Load())
			}
		})
	}
}

func TestClosed(t *testing.T) {
	c := New(policy.H2, testEnv())
	c.Close(context.Background())
	c.Close(context.Background())
	st := &policy.Streamtype{Name: "x", Protocol: policy.H2, Endpoint: "127.0.0.1", Port: 1, ClientCert: -1}
	if res := c.Run(context.Background(), attempt(st, testEnv(), nil), newRecorder()); !errors.Is(res.Err, ErrClosed) {
		t.Fatal(res.Err)
	}
}

// pingRecorder is a recorder whose Sink takes a keep-alive function, like
// the stream runtime's.
type pingRecorder struct {
	*recorder
	ping      chan func()
	confirmed chan struct{}
}

func (r *pingRecorder) SetPing(f func()) { r.ping <- f }
func (r *pingRecorder) ValidityConfirmed() {
	select {
	case r.confirmed <- struct{}{}:
	default:
	}
}

func TestH2PingValidity(t *testing.T) {
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "last")
	})
	s := startServer(t, policy.H2, true, h)
	st := s.streamtype(policy.H2, "/")
	st.LongPoll = true
	rec := &pingRecorder{recorder: newRecorder(), ping: make(chan func(), 1), confirmed: make(chan struct{}, 1)}
	c := New(policy.H2, testEnv())
	defer c.Close(context.Background())
	done := make(chan transport.Result, 1)
	go func() { done <- c.Run(context.Background(), attempt(st, testEnv(), nil), rec) }()
	var ping func()
	select {
	case ping = <-rec.ping:
	case <-time.After(5 * time.Second):
		t.Fatal("no SetPing")
	}
	ping()
	select {
	case <-rec.confirmed:
	case <-time.After(5 * time.Second):
		t.Fatal("PING not acknowledged")
	}
	close(release)
	if res := <-done; res.Err != nil || !res.Completed {
		t.Fatalf("result %+v", res)
	}
	ping() // after the transaction: ignored
	seq := rec.seq()
	var body string
	for _, b := range rec.rx {
		body += string(b)
	}
	if body != "firstlast" || seq[0] != "CONNECTED" || !strings.HasPrefix(seq[1], "rx(SOM,") || strings.Join(seq[len(seq)-2:], " ") != "rx(EOM,) QOS_ACK_REMOTE" {
		t.Fatalf("events %q, body %q", seq, body)
	}
}

func TestH1UnixSocket(t *testing.T) {
	path := t.TempDir() + "/h1.sock"
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Host+" "+r.URL.Path)
	})}
	done := make(chan struct{})
	go func() { defer close(done); hs.Serve(ln) }()
	defer func() { hs.Close(); <-done }()
	st := &policy.Streamtype{Name: "u", Protocol: policy.H1, Endpoint: "+" + path, ClientCert: -1, HTTPMethod: "GET", HTTPURL: "v1/u"}
	res, rec := runOnce(t, st, attempt(st, testEnv(), nil))
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	eq(t, rec.seq(), []string{"CONNECTED", "rx(SOM,localhost /v1/u)", "rx(EOM,)", "QOS_ACK_REMOTE"})
}

// TestSlowSinkIsNotIdle: time spent blocked in Sink.Rx (backpressure) does
// not count against the body idle limit.
func TestSlowSinkIsNotIdle(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "one")
		w.(http.Flusher).Flush()
		io.WriteString(w, "two")
	})
	forEachProto(t, h, func(t *testing.T, s *server, p policy.Protocol) {
		env := testEnv()
		env.BodyIdleTimeout = 200 * time.Millisecond
		st := s.streamtype(p, "/")
		c := New(p, env)
		defer c.Close(context.Background())
		rec := newRecorder()
		rec.rxHook = func() { time.Sleep(400 * time.Millisecond) }
		res := c.Run(context.Background(), attempt(st, env, nil), rec)
		if res.Err != nil || !res.Completed {
			t.Fatalf("result %+v", res)
		}
	})
}

func TestH2ConcurrentShareOneConnection(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		io.WriteString(w, r.Proto)
	})
	s := startServer(t, policy.H2, true, h)
	env := testEnv()
	c := New(policy.H2, env)
	defer c.Close(context.Background())
	st := s.streamtype(policy.H2, "/")
	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := newRecorder()
			if res := c.Run(context.Background(), attempt(st, env, nil), rec); res.Err != nil || string(rec.rx[0]) != "HTTP/2.0" {
				t.Errorf("result %+v, rx %q", res, rec.rx)
			}
		}()
	}
	wg.Wait()
	if n := s.accepts.Load(); n != 1 {
		t.Fatalf("%d connections for 5 concurrent transactions", n)
	}
}

// TestH2FallbackToH1: a TLS server without h2 in ALPN gets HTTP/1.1.
func TestH2FallbackToH1(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto+" "+r.Header.Get("Connection"))
	})
	s := startServer(t, policy.H1, true, h)
	st := s.streamtype(policy.H2, "/")
	c := New(policy.H2, testEnv())
	defer c.Close(context.Background())
	for i := 0; i < 2; i++ {
		rec := newRecorder()
		if res := c.Run(context.Background(), attempt(st, testEnv(), nil), rec); res.Err != nil {
			t.Fatal(res.Err)
		}
		eq(t, rec.seq(), []string{"CONNECTED", "rx(SOM,HTTP/1.1 close)", "rx(EOM,)", "QOS_ACK_REMOTE"})
	}
	if c.h2poolLen() != 0 {
		t.Fatal("an HTTP/1.1 connection was pooled")
	}
}
