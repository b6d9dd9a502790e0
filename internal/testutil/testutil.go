// Package testutil holds helpers shared by tests: certificate authorities
// generated on the fly, loopback servers, goleak options and hand-built
// policies. It is internal and test-only; keep its API stable, others use it.
package testutil

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/securestreams/ss/policy"
)

// GoleakOptions are the goleak options every package's TestMain should use:
// protoactor's dead-letter throttle goroutine outlives a dead letter briefly.
func GoleakOptions() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"),
		goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewThrottle.func1.1"),
	}
}

// CA is a test certificate authority.
type CA struct {
	Cert *x509.Certificate
	DER  []byte
	Key  crypto.Signer
	Pool *x509.CertPool
}

// NewCA generates a CA (ECDSA P-256) valid for a day.
func NewCA(tb testing.TB) *CA {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(tb),
		Subject:               pkix.Name{CommonName: "ss test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{Cert: cert, DER: der, Key: key, Pool: pool}
}

func serial(tb testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// Leaf is a certificate issued by a CA with its key.
type Leaf struct {
	Cert    *x509.Certificate
	DER     []byte
	Key     crypto.Signer
	KeyDER  []byte // PKCS#8
	TLSCert tls.Certificate
}

// Issue issues a server (and client) certificate for names: DNS names or IP
// addresses. "localhost", "127.0.0.1" and "::1" are good loopback choices.
func (ca *CA) Issue(tb testing.TB, names ...string) *Leaf {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(tb),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	return &Leaf{Cert: cert, DER: der, Key: key, KeyDER: kder,
		TLSCert: tls.Certificate{Certificate: [][]byte{der, ca.DER}, PrivateKey: key, Leaf: cert}}
}

// ServerTLS returns a TLS server configuration presenting the leaf.
func (l *Leaf) ServerTLS() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{l.TLSCert}, MinVersion: tls.VersionTLS12}
}

// PolicyCert returns the leaf as a policy certs entry.
func (l *Leaf) PolicyCert(name string) *policy.Cert {
	return &policy.Cert{Name: name, DER: l.DER, Kind: policy.KindCertificate, Certificate: l.Cert}
}

// PolicyKey returns the leaf's private key as a policy certs entry.
func (l *Leaf) PolicyKey(name string) *policy.Cert {
	return &policy.Cert{Name: name, DER: l.KeyDER, Kind: policy.KindPrivateKey, PrivateKey: l.Key}
}

// TrustStore returns a policy trust store holding the CA.
func (ca *CA) TrustStore(name string) *policy.TrustStore {
	c := &policy.Cert{Name: name + "_ca", DER: ca.DER, Kind: policy.KindCertificate, Certificate: ca.Cert}
	return &policy.TrustStore{Name: name, Stack: []*policy.Cert{c}, Pool: ca.Pool}
}
