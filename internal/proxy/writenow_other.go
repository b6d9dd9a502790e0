//go:build !unix

package proxy

import "syscall"

// nonBlockingWrites: not here; the writer goroutine writes everything.
const nonBlockingWrites = false

func writeNow(rc syscall.RawConn, p []byte) (int, error) { return 0, nil }
