//go:build !linux

package ss

import (
	"log/slog"

	"github.com/securestreams/ss/internal/evloop"
)

// newPoller: there is no event loop on this OS (Config.EventLoop is
// ignored).
func newPoller(*slog.Logger) *evloop.Poller { return nil }
