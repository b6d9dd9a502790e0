//go:build linux

package ss

import (
	"log/slog"

	"github.com/securestreams/ss/internal/evloop"
)

// newPoller starts the runtime's event loop (Config.EventLoop); nil, the
// standard net path, when the system refuses it.
func newPoller(log *slog.Logger) *evloop.Poller {
	p, err := evloop.NewPoller()
	if err != nil {
		log.Warn("ss: event loop not available, connections keep a goroutine each", "err", err)
		return nil
	}
	return p
}
