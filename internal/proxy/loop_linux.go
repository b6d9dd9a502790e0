//go:build linux

package proxy

import (
	"net"
	"sync/atomic"

	"github.com/securestreams/ss/internal/evloop"
)

// loopState is a Server's event loop: its pollers (an epoll set and its
// goroutine each) and the next one to give a link.
type loopState struct {
	pollers []*evloop.Poller
	next    atomic.Uint32
}

// startLoop starts the pollers unless the loop is off. Without them (an
// error) links are read by goroutines, as with LoopOff.
func (s *Server) startLoop() {
	if s.Loop == LoopOff {
		return
	}
	n := max(s.Pollers, 1)
	for range n {
		p, err := evloop.NewPollerConfig(evloop.Config{BusyPoll: s.BusyPoll})
		if err != nil {
			s.logger().Warn("ss: proxy: event loop not available, links are read by goroutines", "err", err)
			s.stopLoop()
			return
		}
		s.loop.pollers = append(s.loop.pollers, p)
	}
}

// stopLoop stops the pollers (every link has ended).
func (s *Server) stopLoop() {
	for _, p := range s.loop.pollers {
		p.Close()
	}
	s.loop.pollers = nil
}

// poller returns the event loop l's client connection is in (nil: none).
func (l *link) poller() *evloop.Poller {
	if c, ok := l.lc.(*evloop.Conn); ok {
		return c.Poller()
	}
	return nil
}

// adopt moves c into a poller's epoll set; nil (c unchanged) without the
// loop or when c has no descriptor.
func (s *Server) adopt(c net.Conn) parker {
	ps := s.loop.pollers
	if len(ps) == 0 {
		return nil
	}
	p := ps[int(s.loop.next.Add(1))%len(ps)]
	lc, err := p.Adopt(c)
	if err != nil {
		return nil
	}
	return lc
}
