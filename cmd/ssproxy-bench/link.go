package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/proxy"
	pub "github.com/securestreams/ss/proxy"
)

// link is one stream to the onward peer: through an SSSv1 proxy (one frame
// per Write) or straight to the peer (direct mode).
type link interface {
	// Write sends p to the peer.
	Write(p []byte) error
	// Read returns the next bytes from the peer; they are valid until the
	// next Read.
	Read() ([]byte, error)
	// SetDeadline bounds every later Read and Write (time.Time{}: none).
	SetDeadline(t time.Time) error
	// Close ends the stream.
	Close() error
}

// target says how links are made.
type target struct {
	proxy      string        // SSSv1 proxy address (pub.ParseAddress forms); "" for direct
	direct     string        // peer host:port in direct mode
	streamtype string        // streamtype whose onward peer is the bench peer
	timeout    time.Duration // setup bound per link
	testLimit  time.Duration // bound for one test on a link (0: none)
}

// dial opens a link, waits until it reaches the peer (CONNECTED) and bounds
// what follows by testLimit, so that a proxy that stops answering cannot
// hang the run.
func (t target) dial() (link, error) {
	l, err := t.dialLink()
	if err == nil && t.testLimit > 0 {
		l.SetDeadline(time.Now().Add(t.testLimit))
	}
	return l, err
}

func (t target) dialLink() (link, error) {
	if t.proxy == "" {
		c, err := net.DialTimeout("tcp", t.direct, t.timeout)
		if err != nil {
			return nil, err
		}
		return &directLink{c: c, buf: make([]byte, 64<<10)}, nil
	}
	return dialProxied(t.proxy, t.streamtype, t.timeout)
}

type directLink struct {
	c   net.Conn
	buf []byte
}

func (d *directLink) Write(p []byte) error          { _, err := d.c.Write(p); return err }
func (d *directLink) Close() error                  { return d.c.Close() }
func (d *directLink) SetDeadline(t time.Time) error { return d.c.SetDeadline(t) }
func (d *directLink) Read() ([]byte, error) {
	n, err := d.c.Read(d.buf)
	if n > 0 {
		return d.buf[:n], nil
	}
	return nil, err
}

// proxiedLink is an SSSv1 client link written from docs/wire.md: STREAMTYPE,
// CREATE_RESULT, ONWARD_CONNECT, CONNSTATE CONNECTED, then TX_PAYLOAD out and
// RX_PAYLOAD in.
type proxiedLink struct {
	c     net.Conn
	dec   *proxy.Decoder
	wbuf  []byte
	start time.Time
}

var errLinkState = errors.New("onward stream left CONNECTED")

func dialProxied(address, streamtype string, timeout time.Duration) (*proxiedLink, error) {
	network, addr, err := pub.ParseAddress(address)
	if err != nil {
		return nil, err
	}
	c, err := net.DialTimeout(network, addr, timeout)
	if err != nil {
		return nil, err
	}
	l := &proxiedLink{c: c, dec: proxy.NewDecoder(c, proxy.ProxyToClient, proxy.Limits{}), start: time.Now()}
	l.dec.SetBorrow(true)
	c.SetDeadline(time.Now().Add(timeout))
	fail := func(err error) (*proxiedLink, error) {
		c.Close()
		return nil, fmt.Errorf("%s %q: %w", address, streamtype, err)
	}
	st := &proxy.StreamType{PID: uint32(os.Getpid()), Credit: proxy.DefaultCredit, Name: streamtype}
	if l.wbuf, err = st.AppendBinary(l.wbuf[:0]); err != nil {
		return fail(err)
	}
	if _, err := c.Write(l.wbuf); err != nil {
		return fail(err)
	}
	// ONWARD_CONNECT only once CREATE_RESULT has arrived: an lws proxy
	// closes a link that sends it earlier (docs/wire.md §3.2).
	connectSent := false
	for {
		m, err := l.dec.Next()
		if err != nil {
			return fail(fmt.Errorf("during setup: %w", err))
		}
		switch m := m.(type) {
		case *proxy.CreateResult:
			if !m.OK() {
				return fail(errors.New("CREATE_RESULT: failed (unknown streamtype?)"))
			}
			if !connectSent {
				connectSent = true
				if l.wbuf, err = (&proxy.OnwardConnect{}).AppendBinary(l.wbuf[:0]); err != nil {
					return fail(err)
				}
				if _, err := c.Write(l.wbuf); err != nil {
					return fail(err)
				}
			}
		case *proxy.ConnState:
			switch m.State {
			case event.Connected:
				c.SetDeadline(time.Time{})
				return l, nil
			case event.Unreachable, event.AllRetriesFailed, event.Disconnected, event.AuthFailed:
				return fail(fmt.Errorf("onward stream: %v", m.State))
			}
		}
	}
}

func (l *proxiedLink) Write(p []byte) error {
	m := proxy.TxPayload{Flags: event.SOM | event.EOM, TimeUS: uint64(time.Since(l.start).Microseconds()), Payload: p}
	var err error
	if l.wbuf, err = m.AppendHeader(l.wbuf[:0]); err != nil {
		return err
	}
	l.wbuf = append(l.wbuf, p...)
	_, err = l.c.Write(l.wbuf)
	return err
}

func (l *proxiedLink) Read() ([]byte, error) {
	for {
		m, err := l.dec.Next()
		if err != nil {
			return nil, err
		}
		switch m := m.(type) {
		case *proxy.RxPayload:
			if len(m.Payload) > 0 {
				return m.Payload, nil
			}
		case *proxy.ConnState:
			if m.State == event.Disconnected || m.State == event.Unreachable || m.State == event.AllRetriesFailed {
				return nil, fmt.Errorf("%w: %v", errLinkState, m.State)
			}
		}
	}
}

func (l *proxiedLink) Close() error                  { return l.c.Close() }
func (l *proxiedLink) SetDeadline(t time.Time) error { return l.c.SetDeadline(t) }
