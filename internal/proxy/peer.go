package proxy

import (
	"net"
	"strconv"
)

// Peer is who is at the other end of a link, as far as the kernel says.
type Peer struct {
	// Cred: UID, GID and PID come from the kernel (SO_PEERCRED, unix
	// sockets on Linux); otherwise they are unknown.
	Cred          bool
	UID, GID, PID uint32
	// Addr is the remote address (TCP: host:port).
	Addr string
}

// String formats the peer for logs: "uid=… gid=… pid=…" or the address.
func (p Peer) String() string {
	if p.Cred {
		return "uid=" + strconv.FormatUint(uint64(p.UID), 10) + " gid=" + strconv.FormatUint(uint64(p.GID), 10) +
			" pid=" + strconv.FormatUint(uint64(p.PID), 10)
	}
	if p.Addr == "" {
		return "unknown"
	}
	return p.Addr
}

// userKey is what MaxLinksPerUID counts: the uid, else the remote host.
func (p Peer) userKey() string {
	if p.Cred {
		return "uid:" + strconv.FormatUint(uint64(p.UID), 10)
	}
	host, _, err := net.SplitHostPort(p.Addr)
	if err != nil {
		host = p.Addr
	}
	return "host:" + host
}

// processKey is what MaxLinksPerProcess counts ("" when unknown).
func (p Peer) processKey() string {
	if !p.Cred {
		return ""
	}
	return "pid:" + strconv.FormatUint(uint64(p.PID), 10)
}

// peerOf returns what is known about c's peer.
func peerOf(c net.Conn) Peer {
	p := Peer{}
	if a := c.RemoteAddr(); a != nil && a.Network() != "unix" {
		p.Addr = a.String()
	}
	if uc, ok := c.(*net.UnixConn); ok {
		if uid, gid, pid, ok := peerCred(uc); ok {
			p.Cred, p.UID, p.GID, p.PID = true, uid, gid, pid
		}
	}
	return p
}
