//go:build unix

package proxy

import "syscall"

// nonBlockingWrites: writeNow can write without blocking here.
const nonBlockingWrites = true

// writeNow writes what the socket takes at once (one write(2), no waiting
// for room): n < len(p) with a nil error when the socket buffer is full.
func writeNow(rc syscall.RawConn, p []byte) (n int, err error) {
	var werr error
	err = rc.Write(func(fd uintptr) bool {
		for {
			m, e := syscall.Write(int(fd), p[n:])
			if m > 0 {
				n += m
			}
			if e == syscall.EINTR {
				continue
			}
			if e != nil && e != syscall.EAGAIN {
				werr = e
			}
			return true
		}
	})
	if err == nil {
		err = werr
	}
	return n, err
}
