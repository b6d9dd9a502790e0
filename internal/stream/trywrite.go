package stream

import (
	"context"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
)

// TryWrite is Write without waiting: when the transmit queue has no room
// for p it queues nothing and returns false (the proxy's event loop then
// hands the write to a goroutine that may wait; docs/proxy.md, "Event
// loop").
func (s *Stream) TryWrite(p []byte, flags event.Flags) (bool, error) {
	ctx := context.Background()
	if ok, err := s.tx.sendDirect(ctx, p, flags); ok {
		return true, err
	}
	return s.tx.pushWait(ctx, transport.Chunk{Data: cloneTx(p), Flags: flags, Len: -1}, false)
}
