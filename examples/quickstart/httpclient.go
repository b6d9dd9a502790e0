package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/quic-go/quic-go/http3"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/policy"
)

// httpClientPolicy has one GET streamtype per HTTP version, all trusting
// only the quickstart CA. The response header X-Server is captured into the
// "server" metadata item.
const httpClientPolicy = `{
  "release": "quickstart",
  "retry": [{ "quick": { "backoff": [100, 200], "conceal": 2, "jitterpc": 0 } }],
  "certs": [{ "qs_http_ca": "%[1]s" }],
  "trust_stores": [{ "name": "qs_http_trust", "stack": ["qs_http_ca"] }],
  "s": [{
    "get_h1": {
      "protocol": "h1", "endpoint": "https://127.0.0.1:%[2]d/hello", "http_method": "GET",
      "tls_trust_store": "qs_http_trust", "retry": "quick", "metadata": [{ "server": "x-server:" }]
    },
    "get_h2": {
      "protocol": "h2", "endpoint": "https://127.0.0.1:%[2]d/hello", "http_method": "GET",
      "tls_trust_store": "qs_http_trust", "retry": "quick", "metadata": [{ "server": "x-server:" }]
    },
    "get_h3": {
      "protocol": "h3", "endpoint": "127.0.0.1", "port": %[3]d, "tls": true, "http_url": "hello",
      "http_method": "GET", "tls_trust_store": "qs_http_trust", "retry": "quick",
      "metadata": [{ "server": "x-server:" }]
    }
  }]
}`

// httpClients serves HTTPS (HTTP/2 or HTTP/1.1 by ALPN) and HTTP/3 on
// loopback with net/http and quic-go, then runs one GET per HTTP version
// through ss client streams (h1, h2, h3).
func httpClients(ctx context.Context) error {
	caDER, certDER, keyDER, err := generatePKI()
	if err != nil {
		return err
	}
	key, err := x509.ParsePKCS8PrivateKey(keyDER)
	if err != nil {
		return err
	}
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{certDER}, PrivateKey: key}}}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Server", "quickstart")
		fmt.Fprintf(w, "hello over %s", r.Proto)
	})

	// HTTPS over TCP: HTTP/2 when the client offers it, else HTTP/1.1.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: handler, TLSConfig: tlsCfg.Clone(), ErrorLog: log.New(io.Discard, "", 0)}
	tcpDone := make(chan struct{})
	go func() { defer close(tcpDone); hs.ServeTLS(ln, "", "") }()
	defer func() { hs.Close(); <-tcpDone }()

	// HTTP/3 over UDP.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	h3 := &http3.Server{Handler: handler, TLSConfig: http3.ConfigureTLSConfig(tlsCfg.Clone()), Logger: slog.New(slog.DiscardHandler)}
	udpDone := make(chan struct{})
	go func() { defer close(udpDone); h3.Serve(pc) }()
	defer func() { h3.Close(); pc.Close(); <-udpDone }()

	doc := fmt.Sprintf(httpClientPolicy, base64.StdEncoding.EncodeToString(caDER),
		ln.Addr().(*net.TCPAddr).Port, pc.LocalAddr().(*net.UDPAddr).Port)
	p, diags, err := policy.Parse([]byte(doc), policy.Options{})
	for _, d := range diags {
		fmt.Println("policy:", d)
	}
	if err != nil {
		return err
	}
	rt, err := ss.New(ctx, ss.Config{Policy: p})
	if err != nil {
		return err
	}
	defer rt.Close(ctx)

	for _, name := range []string{"get_h1", "get_h2", "get_h3"} {
		if err := getOnce(ctx, rt, name); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	if n := rt.Stats().IllegalTransitions; n != 0 {
		return fmt.Errorf("%d illegal state transitions", n)
	}
	return nil
}

// getOnce runs one transaction: RequestTx starts it; the body arrives as rx
// chunks (SOM first, then a zero-length EOM), then QOS_ACK_REMOTE and
// DISCONNECTED end it.
func getOnce(ctx context.Context, rt *ss.Runtime, name string) error {
	s, err := rt.Create(ctx, name)
	if err != nil {
		return err
	}
	if err := s.RequestTx(); err != nil {
		return err
	}
	var body strings.Builder
	acked, done := false, false
	for ev := range s.Events() {
		switch ev.Kind {
		case ss.StateEvent:
			fmt.Printf("%s state: %v\n", name, ev.State)
			switch ev.State {
			case ss.QoSAckRemote:
				acked = true
			case ss.Disconnected, ss.AllRetriesFailed:
				done = true
			}
		case ss.PayloadEvent:
			body.Write(ev.Payload)
			fmt.Printf("%s rx(%v): %q\n", name, ev.Flags, ev.Payload)
		}
		if done {
			break
		}
	}
	server, _ := s.Metadata("server")
	// Destroy: DESTROYING follows, then the channel closes.
	if err := s.Destroy(ctx); err != nil {
		return err
	}
	for range s.Events() {
	}
	fmt.Printf("%s: body %q, X-Server %q\n", name, body.String(), server)
	if !acked || !strings.HasPrefix(body.String(), "hello over HTTP/") || server != "quickstart" {
		return fmt.Errorf("unexpected answer %q (acknowledged: %v, X-Server %q)", body.String(), acked, server)
	}
	return nil
}
