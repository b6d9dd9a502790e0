//go:build !linux

package evloop

// Poller exists only on Linux; elsewhere this placeholder lets callers
// name the type (a nil *Poller: no event loop) and keep the standard net
// path.
type Poller struct{}

// Close does nothing: no Poller is ever made on this OS.
func (p *Poller) Close() error { return nil }
