package evloop

import "errors"

// ErrWouldBlock is returned by reads of a Conn in non-blocking mode when
// no data is available. (Declared on every OS so that readers can test for
// it; Conn and Poller exist on Linux only.)
var ErrWouldBlock = errors.New("evloop: no data available (would block)")
