//go:build !linux

package proxy

import (
	"net"

	"github.com/securestreams/ss/internal/evloop"
)

// loopState: there is no event loop on this OS.
type loopState struct{}

func (s *Server) startLoop()              {}
func (s *Server) stopLoop()               {}
func (s *Server) adopt(c net.Conn) parker { return nil }
func (l *link) poller() *evloop.Poller    { return nil }
