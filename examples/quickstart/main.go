// Command quickstart runs Secure Streams end to end on this machine, one
// function per protocol. Each part starts its own loopback server, builds a
// policy, runs a stream and prints its states and payload.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"math/big"
	"net"
	"os"
	"strings"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/policy"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	parts := []struct {
		name string
		run  func(context.Context) error
	}{
		{"raw+tls", rawTLS},
		{"websocket", wsEcho},
		{"http server", httpServe},
		{"http client (h1, h2, h3)", httpClients},
		{"mqtt", mqttPubSub},
	}
	for _, p := range parts {
		fmt.Printf("== %s\n", p.name)
		if err := p.run(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "quickstart %s: %v\n", p.name, err)
			os.Exit(1)
		}
	}
}

// rawTLSPolicy has a raw TLS server streamtype (certificate and key in the
// policy) and a raw TLS client streamtype that trusts only the quickstart CA.
const rawTLSPolicy = `{
  "release": "quickstart",
  "retry": [{ "quick": { "backoff": [100, 200], "conceal": 2, "jitterpc": 0 } }],
  "certs": [{ "qs_ca": "%[1]s", "qs_server_cert": "%[2]s", "qs_server_key": "%[3]s" }],
  "trust_stores": [{ "name": "qs_trust", "stack": ["qs_ca"] }],
  "s": [{
    "echo_server": {
      "server": true, "protocol": "raw", "endpoint": "127.0.0.1", "port": %[4]d,
      "tls": true, "server_cert": "qs_server_cert", "server_key": "qs_server_key"
    },
    "echo_client": {
      "protocol": "raw", "endpoint": "127.0.0.1", "port": %[4]d,
      "tls": true, "tls_trust_store": "qs_trust", "retry": "quick",
      "payload_fmt": "text"
    }
  }]
}`

// rawTLS serves a raw TLS echo with an ss server stream, then connects an
// ss client stream to it, sends a message and prints what comes back.
func rawTLS(ctx context.Context) error {
	ca, cert, key, err := generatePKI()
	if err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	b64 := base64.StdEncoding.EncodeToString
	doc := fmt.Sprintf(rawTLSPolicy, b64(ca), b64(cert), b64(key), port)
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

	// The server: every accepted stream echoes what it receives.
	srv, err := rt.Serve(ctx, "echo_server")
	if err != nil {
		return err
	}
	go func() {
		for acc := range srv.Accepted() {
			go func() {
				for ev := range acc.Events() {
					if ev.Kind == ss.PayloadEvent {
						_ = acc.Send(ctx, ev.Payload)
					}
				}
			}()
		}
	}()

	// The client.
	s, err := rt.Create(ctx, "echo_client")
	if err != nil {
		return err
	}
	fmt.Printf("client stream created, payload format %q\n", s.PayloadFormat())
	msg := "hello, secure streams"
	if err := s.Send(ctx, []byte(msg)); err != nil {
		return err
	}
	var got strings.Builder
	for ev := range s.Events() {
		switch ev.Kind {
		case ss.StateEvent:
			fmt.Println("state:", ev.State)
			if ev.State == ss.AllRetriesFailed {
				return fmt.Errorf("could not connect")
			}
		case ss.PayloadEvent:
			got.Write(ev.Payload)
			fmt.Printf("rx(%v): %q\n", ev.Flags, ev.Payload)
			if got.Len() >= len(msg) {
				// Destroy is safe from inside the loop: DISCONNECTED and
				// DESTROYING follow, then the channel closes.
				if err := s.Destroy(ctx); err != nil {
					return err
				}
			}
		}
	}
	if got.String() != msg {
		return fmt.Errorf("echo %q, want %q", got.String(), msg)
	}
	if n := rt.Stats().IllegalTransitions; n != 0 {
		return fmt.Errorf("%d illegal state transitions", n)
	}
	return srv.Close(ctx)
}

// generatePKI makes a CA and a server certificate for 127.0.0.1 signed by
// it; it returns DER certificates and the PKCS#8 server key.
func generatePKI() (caDER, certDER, keyDER []byte, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "quickstart CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err = x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	certDER, err = x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	keyDER, err = x509.MarshalPKCS8PrivateKey(key)
	return caDER, certDER, keyDER, err
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
