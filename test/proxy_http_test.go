package test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/policy"
)

// h1Server is a plain HTTP/1.1 server for the proxied HTTP scenarios.
func h1Server(t *testing.T) int {
	t.Helper()
	hts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/get":
			io.WriteString(w, "hello "+r.Proto)
		case "/404":
			w.WriteHeader(404)
			io.WriteString(w, "nope")
		case "/530":
			w.WriteHeader(530)
			io.WriteString(w, "mapped")
		case "/post":
			b, _ := io.ReadAll(r.Body)
			io.WriteString(w, "got "+strconv.Itoa(len(b))+" cl="+strconv.FormatInt(r.ContentLength, 10))
		}
	}))
	t.Cleanup(hts.Close)
	return hts.Listener.Addr().(*net.TCPAddr).Port
}

// requestTxStart is the start of a stream's events after RequestTx on an
// idle stream: CREATING, POLL, CONNECTING locally; through a proxy the
// client sends ONWARD_CONNECT and the proxy calls Connect, which goes
// straight to CONNECTING (docs/wire.md §6.2 step 5: POLL precedes CONNECTING
// only when a length hint or TX_PAYLOAD triggered the connect).
func requestTxStart(t *testing.T) []string {
	if strings.HasSuffix(t.Name(), "/local") {
		return []string{"CREATING", "POLL", "CONNECTING"}
	}
	return []string{"CREATING", "CONNECTING"}
}

func h1Type(name string, port int, method, url string) *policy.Streamtype {
	return &policy.Streamtype{Name: name, Protocol: policy.H1, Endpoint: "127.0.0.1", Port: uint16(port),
		ClientCert: -1, HTTPMethod: method, HTTPURL: url}
}

// scenarioH1Get: a GET with a 200 response and a body: the exact sequence
// (docs/streams.md §4 table), the same in all three ways but for POLL
// (requestTxStart).
func scenarioH1Get(t *testing.T, bin string) {
	port := h1Server(t)
	bothWays(t, bin, newPolicy(h1Type("get", port, "GET", "/get")), func(t *testing.T, rt *ss.Runtime) {
		ctx := context.Background()
		s, err := rt.Create(ctx, "get")
		if err != nil {
			t.Fatal(err)
		}
		r := record(t, s)
		if err := s.RequestTx(); err != nil {
			t.Fatal(err)
		}
		r.untilState(wait, ss.Disconnected)
		s.Destroy(ctx)
		r.closed(wait)
		r.expect(append(requestTxStart(t), "CONNECTED", `rx(SOM,"hello HTTP/1.1")`, `rx(EOM,"")`,
			"QOS_ACK_REMOTE", "DISCONNECTED", "DESTROYING")...)
	})
}

// scenarioH1Post: a POST whose body the application writes only after
// CONNECTED, as lws clients do. Through a proxy CONNECTED comes as soon as
// the request headers are sent (docs/wire.md §6.3, early CONNECTED), so it
// arrives before any body byte; locally it follows the response, so it does
// not come until the body has been written. The sequences are otherwise
// the same.
func scenarioH1Post(t *testing.T, bin string) {
	port := h1Server(t)
	bothWays(t, bin, newPolicy(h1Type("post", port, "POST", "/post")), func(t *testing.T, rt *ss.Runtime) {
		local := strings.HasSuffix(t.Name(), "/local")
		ctx := context.Background()
		s, err := rt.Create(ctx, "post")
		if err != nil {
			t.Fatal(err)
		}
		r := record(t, s)
		if err := s.SetTxLen(5); err != nil {
			t.Fatal(err)
		}
		early := false
		// Local: 300 ms without CONNECTED shows the stream waits for the
		// body. Proxied: CONNECTED comes early, within the usual bound
		// (a loaded machine can take more than 300 ms).
		limit := 300 * time.Millisecond
		if !local {
			limit = wait
		}
		timer := time.NewTimer(limit)
	wait:
		for {
			select {
			case ev := <-s.Events():
				r.ev = append(r.ev, ev)
				r.at = append(r.at, time.Now())
				if ev.Kind == ss.StateEvent && ev.State == ss.Connected {
					early = true
					break wait
				}
			case <-timer.C:
				break wait
			}
		}
		timer.Stop()
		if early == local {
			t.Fatalf("CONNECTED before the body: %v, want %v (early CONNECTED only through a proxy); events %s", early, !local, r)
		}
		if err := s.Write(ctx, []byte("hello"), ss.SOM|ss.EOM); err != nil {
			t.Fatal(err)
		}
		r.untilState(wait, ss.Disconnected)
		s.Destroy(ctx)
		r.closed(wait)
		r.expect("CREATING", "POLL", "CONNECTING", "CONNECTED", `rx(SOM,"got 5 cl=5")`, `rx(EOM,"")`,
			"QOS_ACK_REMOTE", "DISCONNECTED", "DESTROYING")
	})
}

// scenarioH1NotFound: a 404 response ends in QOS_NACK_REMOTE.
func scenarioH1NotFound(t *testing.T, bin string) {
	port := h1Server(t)
	bothWays(t, bin, newPolicy(h1Type("nf", port, "GET", "/404")), func(t *testing.T, rt *ss.Runtime) {
		ctx := context.Background()
		s, err := rt.Create(ctx, "nf")
		if err != nil {
			t.Fatal(err)
		}
		r := record(t, s)
		s.RequestTx()
		r.untilState(wait, ss.Disconnected)
		s.Destroy(ctx)
		r.closed(wait)
		r.expect(append(requestTxStart(t), "CONNECTED", `rx(SOM,"nope")`, `rx(EOM,"")`,
			"QOS_NACK_REMOTE", "DISCONNECTED", "DESTROYING")...)
	})
}

// scenarioH1RespMap: an http_resp_map user state (≥ 1000) travels as a
// long-form CONNSTATE and is delivered in the same place.
func scenarioH1RespMap(t *testing.T, bin string) {
	port := h1Server(t)
	st := h1Type("mapped", port, "GET", "/530")
	st.HTTPRespMap = []policy.RespMapEntry{{Status: 530, State: 1530}}
	bothWays(t, bin, newPolicy(st), func(t *testing.T, rt *ss.Runtime) {
		ctx := context.Background()
		s, err := rt.Create(ctx, "mapped")
		if err != nil {
			t.Fatal(err)
		}
		r := record(t, s)
		s.RequestTx()
		r.untilState(wait, ss.Disconnected)
		s.Destroy(ctx)
		r.closed(wait)
		r.expect(append(requestTxStart(t), "USER(1530)", "CONNECTED", `rx(SOM,"mapped")`, `rx(EOM,"")`,
			"QOS_NACK_REMOTE", "DISCONNECTED", "DESTROYING")...)
	})
}
