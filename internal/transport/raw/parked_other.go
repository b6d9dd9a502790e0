//go:build !linux

package raw

import (
	"context"
	"net"

	"github.com/securestreams/ss/internal/transport"
)

// park: there is no event loop on this OS; the connection stays on the
// standard net path (Pipe).
func park(context.Context, *transport.Attempt, net.Conn, transport.Sink, *transport.Timing) bool {
	return false
}
