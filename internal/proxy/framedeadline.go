package proxy

import (
	"net"
	"time"
)

// frameClock is the link's reader under the decoder: it bounds the time a
// frame may take to arrive once it has begun (ServerLimits.FrameTimeout),
// so that a client sending a byte now and then (slowloris) cannot hold a
// link's buffers for ever. The deadline is armed at the first read that
// continues a started frame and cleared when the frame is complete; while
// the link is not being read (back-pressure) nothing counts.
type frameClock struct {
	conn    net.Conn
	timeout time.Duration // 0: off
	inFrame bool          // bytes of an incomplete frame have been read
	armed   bool          // the read deadline is set
}

func (f *frameClock) Read(p []byte) (int, error) {
	if f.timeout > 0 && f.inFrame && !f.armed {
		f.conn.SetReadDeadline(time.Now().Add(f.timeout))
		f.armed = true
	}
	n, err := f.conn.Read(p)
	if n > 0 {
		f.inFrame = true
	}
	return n, err
}

// frameDone is called after each complete frame; partial reports whether
// bytes of the next frame are already buffered.
func (f *frameClock) frameDone(partial bool) {
	if f.armed {
		f.conn.SetReadDeadline(time.Time{})
		f.armed = false
	}
	f.inFrame = partial
}
