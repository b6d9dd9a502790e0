package transport

import "syscall"

// setPriority sets SO_PRIORITY (attr_priority) on the socket fd.
func setPriority(fd uintptr, prio int) error {
	return setsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_PRIORITY, prio)
}
