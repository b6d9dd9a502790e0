package main

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
)

// The onward peer speaks a small protocol so that one raw streamtype serves
// every measurement: the first byte a connection sends selects the mode.
//
//	'E'                        echo every following byte
//	'S' total:u64 every:u32    sink: read total bytes; after each `every`
//	                           bytes, and at the end, write the cumulative
//	                           count as a u64 (the client's pacing acks)
//	'R' total:u64              source: write total bytes in 16 KiB writes
//
// All integers are big-endian. After a sink or source run the peer waits for
// the client to close.
const (
	modeEcho   = 'E'
	modeSink   = 'S'
	modeSource = 'R'

	sinkHeaderLen   = 1 + 8 + 4
	sourceHeaderLen = 1 + 8
	peerWrite       = 16 << 10
)

// peer is the raw onward server: a listener and its connections, all closed
// by Close.
type peer struct {
	ln    net.Listener
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// startPeer listens on addr (TCP host:port; loopback in tests) and serves
// connections until Close.
func startPeer(addr string) (*peer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &peer{ln: ln, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr returns the listening address.
func (p *peer) Addr() string { return p.ln.Addr().String() }

func (p *peer) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		p.mu.Lock()
		if p.conns == nil {
			p.mu.Unlock()
			c.Close()
			return
		}
		p.conns[c] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go func() {
			defer p.wg.Done()
			servePeerConn(c)
			c.Close()
			p.mu.Lock()
			delete(p.conns, c)
			p.mu.Unlock()
		}()
	}
}

// Close stops the listener, closes every connection and waits for their
// goroutines. It is idempotent.
func (p *peer) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

// servePeerConn runs one connection until it closes or breaks the protocol.
func servePeerConn(c net.Conn) {
	var mode [1]byte
	if _, err := io.ReadFull(c, mode[:]); err != nil {
		return
	}
	switch mode[0] {
	case modeEcho:
		// A small buffer: the peer's own memory per connection stays small
		// next to the proxy's, which is what is measured.
		buf := make([]byte, 512)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				if _, werr := c.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	case modeSink:
		var h [sinkHeaderLen - 1]byte
		if _, err := io.ReadFull(c, h[:]); err != nil {
			return
		}
		total := int64(binary.BigEndian.Uint64(h[:8]))
		every := int64(binary.BigEndian.Uint32(h[8:]))
		if every <= 0 {
			every = total
		}
		buf := make([]byte, 64<<10)
		var got, acked int64
		var ack [8]byte
		for got < total {
			n, err := c.Read(buf)
			got += int64(n)
			if got-acked >= every || (got >= total && acked < got) {
				acked = got
				binary.BigEndian.PutUint64(ack[:], uint64(got))
				if _, werr := c.Write(ack[:]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
		io.Copy(io.Discard, c)
	case modeSource:
		var h [sourceHeaderLen - 1]byte
		if _, err := io.ReadFull(c, h[:]); err != nil {
			return
		}
		total := int64(binary.BigEndian.Uint64(h[:]))
		buf := make([]byte, peerWrite)
		for total > 0 {
			n := min(total, int64(len(buf)))
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
			total -= n
		}
		io.Copy(io.Discard, c)
	}
}
