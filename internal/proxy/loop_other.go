//go:build !linux

package proxy

import "net"

// loopState: there is no event loop on this OS.
type loopState struct{}

func (s *Server) startLoop()              {}
func (s *Server) stopLoop()               {}
func (s *Server) adopt(c net.Conn) parker { return nil }
