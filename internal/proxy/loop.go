package proxy

import "net"

// LoopMode selects how a Server reads its links (docs/proxy.md, "Event
// loop").
type LoopMode int

const (
	// LoopAuto is the default: the event loop where there is one (Linux).
	LoopAuto LoopMode = iota
	// LoopOn asks for the event loop (the net path where there is none).
	LoopOn
	// LoopOff reads every link with a goroutine of its own (the standard
	// net path).
	LoopOff
)

// parker is a link's connection in the event loop (*evloop.Conn): read
// without blocking, parked while idle, read inline when readable; written
// without blocking, and from the loop when it has room again
// (WaitWritable; docs/proxy.md "Event loop").
type parker interface {
	net.Conn
	SetHandlers(onReadable, onWake func())
	SetNonblockingReads(on bool)
	Park() bool
	Unpark()
	TryWrite(p []byte) (int, error)
	TryWritev(bufs [][]byte) (int, error)
	SetWriteHandler(onWritable func())
	WaitWritable() bool
}
