package httpc

import (
	"context"
	"sync"
	"time"

	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

// sharedConn is a multiplexed connection (h2 or h3) held by a connPool.
type sharedConn interface {
	// usable reports whether a new request may start on the connection.
	usable() bool
	close()
}

// poolEntry is one connection identity's connection, or a dial in progress.
type poolEntry struct {
	key    connKey
	ready  chan struct{} // closed when the dial is over
	conn   sharedConn
	err    error
	peer   string
	active int
	// idle closes the connection once unused for the pool's idle time:
	// made on the first release, due at idleDue. It is lazy, as the
	// request limits are (timers): a release while it is pending only
	// moves idleDue, and a firing before idleDue (or while the
	// connection is in use) sets it again for the rest, or leaves it to
	// the next release. Under the pool's lock.
	idle        *time.Timer
	idleDue     time.Time
	idlePending bool // idle is set and has not fired yet
}

// connPool shares connections per connection identity (docs/streams.md §12.1).
// A connection is closed when unused for idle, when it becomes unusable and
// its last request is done, and on close.
type connPool struct {
	mu     sync.Mutex
	m      map[connKey]*poolEntry
	idle   time.Duration
	closed bool
}

func newConnPool(idle time.Duration) *connPool {
	return &connPool{m: make(map[connKey]*poolEntry), idle: idle}
}

// connKey is the connection identity of an attempt's endpoint: scheme,
// host, port, TLS, trust store, client certificate slot and SOCKS5 proxy
// (a comparable value: looking a connection up allocates nothing).
type connKey struct {
	network, address, serverName string
	tls                          bool
	trustName                    string
	trust                        *policy.TrustStore
	clientCert                   int
	socks                        string
}

// identityKey is the connection identity of an attempt's endpoint.
func identityKey(a *transport.Attempt, ep *transport.Endpoint) connKey {
	st := a.Type
	return connKey{network: ep.Network, address: ep.Address, serverName: ep.ServerName, tls: ep.TLS,
		trustName: st.TrustStoreName, trust: st.TrustStore, clientCert: st.ClientCert, socks: st.ViaSOCKS5}
}

// get returns a usable connection for key, reusing one or dialing with
// dial (one dial per key at a time; others wait for it). reused tells
// whether the connection existed already. The caller must release it.
func (p *connPool) get(ctx context.Context, key connKey, dial func() (sharedConn, string, error)) (e *poolEntry, reused bool, err error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, false, ErrClosed
		}
		e = p.m[key]
		if e == nil {
			e = &poolEntry{key: key, ready: make(chan struct{}), active: 1}
			p.m[key] = e
			p.mu.Unlock()
			conn, peer, err := dial()
			p.mu.Lock()
			e.conn, e.peer, e.err = conn, peer, err
			closed := p.closed
			if (err != nil || closed) && p.m[key] == e {
				delete(p.m, key)
			}
			close(e.ready)
			p.mu.Unlock()
			if err != nil {
				return nil, false, err
			}
			if closed {
				conn.close()
				return nil, false, ErrClosed
			}
			return e, false, nil
		}
		select {
		case <-e.ready:
			if e.err == nil && e.conn.usable() {
				e.active++ // a pending idle timer that fires meanwhile finds it in use
				p.mu.Unlock()
				return e, true, nil
			}
			if p.m[key] == e {
				delete(p.m, key)
			}
			var stale sharedConn
			if e.err == nil && e.active == 0 {
				if e.idle != nil {
					e.idle.Stop()
					e.idlePending = false
				}
				stale = e.conn
			}
			p.mu.Unlock()
			if stale != nil {
				stale.close()
			}
		default:
			p.mu.Unlock()
			select {
			case <-e.ready:
			case <-ctx.Done():
				return nil, false, ctx.Err()
			}
		}
	}
}

// release ends one request's use of e.
func (p *connPool) release(e *poolEntry) {
	p.mu.Lock()
	e.active--
	if e.active > 0 {
		p.mu.Unlock()
		return
	}
	if p.closed || p.m[e.key] != e || !e.conn.usable() {
		if p.m[e.key] == e {
			delete(p.m, e.key)
		}
		p.mu.Unlock()
		e.conn.close()
		return
	}
	e.idleDue = time.Now().Add(p.idle)
	switch {
	case e.idle == nil:
		e.idle = time.AfterFunc(p.idle, func() { p.expire(e) })
		e.idlePending = true
	case !e.idlePending:
		e.idle.Reset(p.idle)
		e.idlePending = true
	}
	p.mu.Unlock()
}

// expire closes e's connection when it has been unused for the idle time.
func (p *connPool) expire(e *poolEntry) {
	p.mu.Lock()
	e.idlePending = false
	if e.active != 0 || p.m[e.key] != e {
		p.mu.Unlock()
		return // in use (its last release sets the timer again), or gone
	}
	if rest := time.Until(e.idleDue); rest > 0 {
		e.idle.Reset(rest)
		e.idlePending = true
		p.mu.Unlock()
		return
	}
	delete(p.m, e.key)
	p.mu.Unlock()
	e.conn.close()
}

// close closes every connection; later gets fail with ErrClosed.
func (p *connPool) close() {
	p.mu.Lock()
	p.closed = true
	var conns []sharedConn
	for k, e := range p.m {
		delete(p.m, k)
		select {
		case <-e.ready:
		default:
			continue // the dialer sees closed and closes its connection
		}
		if e.idle != nil {
			e.idle.Stop()
		}
		if e.err == nil {
			conns = append(conns, e.conn)
		}
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
}
