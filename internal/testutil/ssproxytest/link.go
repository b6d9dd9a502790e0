// Package ssproxytest holds test helpers for the SS proxy: a raw SSSv1
// client link (frames exactly as a test writes them, hostile ones included)
// and a runner for the ssproxy daemon as a separate process. It is
// internal and test-only.
package ssproxytest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/proxy"
)

var seq atomic.Uint64

// AbstractAddress returns a fresh abstract unix socket address
// ("unix:@…") unique to this process.
func AbstractAddress() string {
	return fmt.Sprintf("unix:@ss-proxytest-%d-%d", os.Getpid(), seq.Add(1))
}

// Link is one raw client connection to a proxy.
type Link struct {
	Conn net.Conn
	dec  *proxy.Decoder
}

// Dial connects to a proxy address (proxy.ParseAddress forms).
func Dial(address string) (*Link, error) {
	network, addr, err := proxy.ParseAddress(address)
	if err != nil {
		return nil, err
	}
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &Link{Conn: c, dec: proxy.NewDecoder(c, proxy.ProxyToClient, proxy.Limits{})}, nil
}

// MustDial is Dial failing the test on error; the link is closed at cleanup.
func MustDial(tb testing.TB, address string) *Link {
	tb.Helper()
	l, err := Dial(address)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	return l
}

// Close closes the connection.
func (l *Link) Close() error { return l.Conn.Close() }

// Send writes the frames of msgs in one write.
func (l *Link) Send(msgs ...proxy.Message) error {
	b, err := proxy.Append(nil, msgs...)
	if err != nil {
		return err
	}
	l.Conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err = l.Conn.Write(b)
	return err
}

// Next reads the next frame from the proxy, waiting at most timeout.
func (l *Link) Next(timeout time.Duration) (proxy.Message, error) {
	l.Conn.SetReadDeadline(time.Now().Add(timeout))
	return l.dec.Next()
}

// Create sends STREAMTYPE for streamtype and returns the CREATE_RESULT.
func (l *Link) Create(streamtype string, timeout time.Duration) (*proxy.CreateResult, error) {
	// A refused link gets CREATE_RESULT failed at once and may be closed
	// before STREAMTYPE is written: read the answer whatever the write did.
	werr := l.Send(&proxy.StreamType{Name: streamtype, PID: uint32(os.Getpid()), Credit: proxy.DefaultCredit})
	m, err := l.Next(timeout)
	if err != nil {
		if werr != nil {
			return nil, werr
		}
		return nil, err
	}
	cr, ok := m.(*proxy.CreateResult)
	if !ok {
		return nil, fmt.Errorf("first frame from the proxy is %v, want CREATE_RESULT", m.Code())
	}
	return cr, nil
}

// MustCreate is Create failing the test unless the stream was created.
func (l *Link) MustCreate(tb testing.TB, streamtype string) {
	tb.Helper()
	cr, err := l.Create(streamtype, 10*time.Second)
	if err != nil {
		tb.Fatalf("create %q: %v", streamtype, err)
	}
	if !cr.OK() {
		tb.Fatalf("create %q: CREATE_RESULT failed", streamtype)
	}
}

// WaitState reads frames until a CONNSTATE with state st arrives (other
// frames are skipped), within timeout.
func (l *Link) WaitState(st event.State, timeout time.Duration) error {
	end := time.Now().Add(timeout)
	for {
		m, err := l.Next(time.Until(end))
		if err != nil {
			return fmt.Errorf("waiting for %v: %w", st, err)
		}
		if cs, ok := m.(*proxy.ConnState); ok && cs.State == st {
			return nil
		}
	}
}

// ReadPayload reads frames until RX_PAYLOAD bytes totalling n arrive (other
// frames are skipped), within timeout, and returns them.
func (l *Link) ReadPayload(n int, timeout time.Duration) ([]byte, error) {
	end := time.Now().Add(timeout)
	var got []byte
	for len(got) < n {
		m, err := l.Next(time.Until(end))
		if err != nil {
			return got, fmt.Errorf("after %d of %d payload bytes: %w", len(got), n, err)
		}
		if p, ok := m.(*proxy.RxPayload); ok {
			got = append(got, p.Payload...)
		}
	}
	return got, nil
}

// RoundTrip sends p as one message on a connected raw echo stream and
// reads it back.
func (l *Link) RoundTrip(p []byte, timeout time.Duration) error {
	if err := l.Send(&proxy.TxPayload{Flags: event.SOM | event.EOM, Payload: p}); err != nil {
		return err
	}
	got, err := l.ReadPayload(len(p), timeout)
	if err != nil {
		return err
	}
	if string(got) != string(p) {
		return fmt.Errorf("echo %q, sent %q", got, p)
	}
	return nil
}

// WaitClosed reads until the proxy closes the link (EOF or a reset),
// within timeout; it fails if the link stays open.
func (l *Link) WaitClosed(timeout time.Duration) error {
	end := time.Now().Add(timeout)
	for {
		_, err := l.Next(time.Until(end))
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return fmt.Errorf("link still open after %v", timeout)
		}
		return nil
	}
}
