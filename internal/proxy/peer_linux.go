package proxy

import (
	"net"
	"syscall"
)

// peerCred reads SO_PEERCRED: the credentials of the process that
// connected, as the kernel recorded them at connect time.
func peerCred(c *net.UnixConn) (uid, gid, pid uint32, ok bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, 0, 0, false
	}
	var cred *syscall.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil || cerr != nil {
		return 0, 0, 0, false
	}
	return cred.Uid, cred.Gid, uint32(cred.Pid), true
}
