//go:build linux

package evloop

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Conn is a socket watched by a Poller. It is a net.Conn (reads and writes
// wait for readiness through the Poller, deadlines work) with, besides:
// non-blocking reads (SetNonblockingReads), TryWrite and TryWritev,
// parking (Park): while parked, the Poller calls the readable handler
// inline on its thread instead of waking a goroutine; and WaitWritable:
// the Poller calls the write handler inline once the socket has room.
//
// At most one goroutine reads and one writes at a time; Close, the
// deadline setters and Park/Unpark may be called from any goroutine. The
// descriptor is used under the Conn's lock, so Close never races a read or
// write on it (a reused descriptor number is never read by mistake).
type Conn struct {
	p    *Poller
	fd   int
	gen  uint32 // in the epoll data of fd's registration (dispatch)
	kind addrKind

	mu          sync.Mutex
	closed      bool
	gone        bool          // the Poller ended: no readiness will come
	armed       uint32        // events fd is watched for (0: not in the set)
	nonblock    bool          // reads return ErrWouldBlock instead of waiting
	parked      bool          // readable → onReadable, inline on the Poller's goroutine
	inHandler   bool          // onReadable is running
	wakePending bool          // a wake-up came while onReadable ran
	rwaiting    bool          // a blocking Read waits for readiness
	wwaiting    bool          // a blocking Write waits for room
	wparked     bool          // WaitWritable: room → onWritable, inline on the Poller's goroutine
	rsig, wsig  chan struct{} // made by the first Read / Write that waits (most Conns never wait)
	rdl, wdl    deadline      // read and write deadlines
	rt, wt      *time.Timer
	onReadable  func()
	onWake      func()
	onWritable  func()
	// addrs: the addresses, read from the socket on first use (TCP and
	// Unix sockets: few callers ask, and each pair kept costs 100–200
	// bytes per connection); other kinds keep nc's from Adopt.
	addrs *connAddrs
}

// connAddrs are a Conn's local and remote addresses, as far as known.
type connAddrs struct{ local, remote net.Addr }

// deadline is a deadline as nanoseconds on the monotonic clock since
// monoBase (0: none); 8 bytes instead of a time.Time's 24 in every Conn.
type deadline int64

var monoBase = time.Now()

func toDeadline(t time.Time) deadline {
	if t.IsZero() {
		return 0
	}
	d := deadline(t.Sub(monoBase))
	if d == 0 {
		d = -1 // a deadline at monoBase itself: passed
	}
	return d
}

// passed reports whether the deadline is set and has passed.
func (d deadline) passed() bool { return d != 0 && deadline(time.Since(monoBase)) >= d }

// addrKind is how a Conn's addresses are made from the socket's.
type addrKind uint8

const (
	addrKept       addrKind = iota // kept from Adopt
	addrTCP                        // *net.TCPAddr
	addrUnix                       // *net.UnixAddr, Net "unix"
	addrUnixpacket                 // *net.UnixAddr, Net "unixpacket"
)

func kindOf(a net.Addr) addrKind {
	switch a := a.(type) {
	case *net.TCPAddr:
		return addrTCP
	case *net.UnixAddr:
		switch a.Net {
		case "unix":
			return addrUnix
		case "unixpacket":
			return addrUnixpacket
		}
	}
	return addrKept
}

// Adopt takes over nc's socket: its descriptor is duplicated and nc is
// closed, so that the Go runtime's netpoller no longer watches it and only
// p reports its readiness. nc must provide syscall.Conn (TCP and Unix
// sockets do).
func (p *Poller) Adopt(nc net.Conn) (*Conn, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil, errors.New("evloop: connection has no descriptor")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, os.NewSyscallError("fcntl", derr)
	}
	if err := unix.SetNonblock(nfd, true); err != nil {
		unix.Close(nfd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	c := &Conn{p: p, fd: nfd, gen: p.nextGen(), kind: kindOf(nc.LocalAddr())}
	if c.kind == addrKept {
		c.addrs = &connAddrs{nc.LocalAddr(), nc.RemoteAddr()}
	}
	nc.Close()
	return c, nil
}

// SetHandlers sets what a parked Conn calls: onReadable, inline on the
// Poller's goroutine, when the socket is readable (or at its end); onWake, on
// a goroutine of its own, when the Conn is closed or its read deadline
// passes while parked (the Conn is then no longer parked). Set them before
// the first Park.
func (c *Conn) SetHandlers(onReadable, onWake func()) {
	c.mu.Lock()
	c.onReadable, c.onWake = onReadable, onWake
	c.mu.Unlock()
}

// SetWriteHandler sets what WaitWritable asks for: onWritable, called once
// per WaitWritable, inline on the Poller's goroutine when the socket has
// room (or has failed), or on a goroutine of its own when the Conn is
// closed, its write deadline passes or the Poller ends first. Set it
// before the first WaitWritable.
func (c *Conn) SetWriteHandler(onWritable func()) {
	c.mu.Lock()
	c.onWritable = onWritable
	c.mu.Unlock()
}

// WaitWritable asks for one call of the write handler once the socket has
// room, instead of a goroutine blocked in Write. It returns false, asking
// nothing, when the Conn is closed, its write deadline has passed or the
// Poller is gone: the caller writes (and sees why).
func (c *Conn) WaitWritable() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.gone || c.wdl.passed() {
		return false
	}
	c.wparked = true
	if c.rearmLocked() != nil {
		c.wparked = false
		return false
	}
	return true
}

// SetNonblockingReads selects whether Read returns ErrWouldBlock (true) or
// waits when no data is available.
func (c *Conn) SetNonblockingReads(on bool) {
	c.mu.Lock()
	c.nonblock = on
	c.mu.Unlock()
}

// Park hands the reading to the Poller: onReadable is called inline when
// the socket is readable, until Unpark (or a wake-up). It returns false,
// changing nothing, when the Conn is closed, its read deadline has passed
// or the Poller is gone: the caller keeps reading (and sees why).
func (c *Conn) Park() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.gone || c.rdl.passed() {
		return false
	}
	c.parked = true
	if c.rearmLocked() != nil {
		c.parked = false
		return false
	}
	return true
}

// Unpark takes the reading back from the Poller (called from onReadable,
// or by anyone who will read next).
func (c *Conn) Unpark() {
	c.mu.Lock()
	c.parked = false
	c.rearmLocked()
	c.mu.Unlock()
}

// rearmLocked makes the events fd is watched for match what is waited for.
func (c *Conn) rearmLocked() error {
	var want uint32
	if !c.closed && !c.gone {
		if c.parked || c.rwaiting {
			want |= unix.EPOLLIN
		}
		if c.wwaiting || c.wparked {
			want |= unix.EPOLLOUT
		}
	}
	if want == c.armed {
		return nil
	}
	err := c.p.ctl(c, c.armed, want)
	if err == nil || want == 0 {
		c.armed = want
	}
	return err
}

// ready handles one readiness report (on the Poller's goroutine).
func (c *Conn) ready(ev uint32) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	hup := ev&(unix.EPOLLERR|unix.EPOLLHUP) != 0
	if (ev&unix.EPOLLOUT != 0 || hup) && c.wwaiting {
		c.wwaiting = false
		signal(c.wsig)
	}
	var whandler func()
	if (ev&unix.EPOLLOUT != 0 || hup) && c.wparked {
		c.wparked = false
		whandler = c.onWritable
	}
	var handler func()
	if ev&unix.EPOLLIN != 0 || hup {
		switch {
		case c.parked:
			handler = c.onReadable
			c.inHandler = true
		case c.rwaiting:
			c.rwaiting = false
			signal(c.rsig)
		}
	}
	c.rearmLocked()
	c.mu.Unlock()
	if whandler != nil {
		whandler() // first: the room it makes may let the readable handler's work through
	}
	if handler == nil {
		return
	}
	handler()
	c.mu.Lock()
	c.inHandler = false
	var wake func()
	if c.wakePending && c.parked {
		c.parked = false
		c.rearmLocked()
		wake = c.onWake
	}
	c.wakePending = false
	c.mu.Unlock()
	if wake != nil {
		go wake()
	}
}

// wakeLocked wakes whoever waits on c after a close or a deadline: blocked
// reads and writes re-check, a parked Conn is unparked and its onWake
// returned (to be run on a goroutine of its own).
func (c *Conn) wakeLocked() func() {
	if c.rwaiting {
		signal(c.rsig)
	}
	if c.wwaiting {
		signal(c.wsig)
	}
	if !c.parked {
		return nil
	}
	if c.inHandler {
		c.wakePending = true
		return nil
	}
	c.parked = false
	c.rearmLocked()
	return c.onWake
}

// wakeWriterLocked returns the write handler when WaitWritable waits (to
// be run on a goroutine of its own, after a close, the write deadline or
// the Poller's end), and stops waiting.
func (c *Conn) wakeWriterLocked() func() {
	if !c.wparked {
		return nil
	}
	c.wparked = false
	c.rearmLocked()
	return c.onWritable
}

// goAll runs each non-nil f on a goroutine of its own.
func goAll(fs ...func()) {
	for _, f := range fs {
		if f != nil {
			go f()
		}
	}
}

// pollerGone is called once the Poller has stopped.
func (c *Conn) pollerGone() {
	c.mu.Lock()
	c.gone = true
	c.armed = 0
	wake := c.wakeLocked()
	wwake := c.wakeWriterLocked()
	c.mu.Unlock()
	goAll(wake, wwake)
}

// signal wakes the waiter on ch, if any (nil: nobody ever waited).
func signal(ch chan struct{}) {
	if ch == nil {
		return
	}
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Read reads what is available; with no data it waits for readiness, or
// returns ErrWouldBlock in non-blocking mode. io.EOF at the end.
func (c *Conn) Read(p []byte) (int, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return 0, net.ErrClosed
		}
		if c.rdl.passed() {
			c.mu.Unlock()
			return 0, os.ErrDeadlineExceeded
		}
		n, err := ignoringEINTR(func() (int, error) { return unix.Read(c.fd, p) })
		if err == unix.EAGAIN {
			if c.nonblock {
				c.mu.Unlock()
				return 0, ErrWouldBlock
			}
			if c.gone {
				c.mu.Unlock()
				return 0, errPollerClosed
			}
			c.rwaiting = true
			if err := c.rearmLocked(); err != nil {
				c.rwaiting = false
				c.mu.Unlock()
				return 0, err
			}
			if c.rsig == nil {
				c.rsig = make(chan struct{}, 1)
			}
			sig := c.rsig
			c.mu.Unlock()
			<-sig
			continue
		}
		c.mu.Unlock()
		switch {
		case err != nil:
			return 0, os.NewSyscallError("read", err)
		case n == 0 && len(p) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// Write writes all of p, waiting for room as needed.
func (c *Conn) Write(p []byte) (int, error) {
	written := 0
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return written, net.ErrClosed
		}
		if c.wdl.passed() {
			c.mu.Unlock()
			return written, os.ErrDeadlineExceeded
		}
		n, err := ignoringEINTR(func() (int, error) { return unix.Write(c.fd, p[written:]) })
		if n > 0 {
			written += n
		}
		if err == nil && written == len(p) {
			c.mu.Unlock()
			return written, nil
		}
		if err == nil {
			c.mu.Unlock()
			continue
		}
		if err == unix.EAGAIN {
			if c.gone {
				c.mu.Unlock()
				return written, errPollerClosed
			}
			c.wwaiting = true
			if err := c.rearmLocked(); err != nil {
				c.wwaiting = false
				c.mu.Unlock()
				return written, err
			}
			if c.wsig == nil {
				c.wsig = make(chan struct{}, 1)
			}
			sig := c.wsig
			c.mu.Unlock()
			<-sig
			continue
		}
		c.mu.Unlock()
		return written, os.NewSyscallError("write", err)
	}
}

// TryWrite writes what the socket takes at once (one write(2)): n < len(p)
// with a nil error when its buffer is full.
func (c *Conn) TryWrite(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	n, err := ignoringEINTR(func() (int, error) { return unix.Write(c.fd, p) })
	if n < 0 {
		n = 0
	}
	if err == unix.EAGAIN {
		err = nil
	}
	if err != nil {
		return n, os.NewSyscallError("write", err)
	}
	return n, nil
}

// maxIovecs bounds the buffers of one writev(2) (IOV_MAX is 1024).
const maxIovecs = 1024

// TryWritev writes what the socket takes at once of bufs, in order (one
// writev(2)): fewer bytes than bufs hold, with a nil error, when its
// buffer is full.
func (c *Conn) TryWritev(bufs [][]byte) (int, error) {
	if len(bufs) > maxIovecs {
		bufs = bufs[:maxIovecs]
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	n, err := ignoringEINTR(func() (int, error) { return unix.Writev(c.fd, bufs) })
	if n < 0 {
		n = 0
	}
	if err == unix.EAGAIN {
		err = nil
	}
	if err != nil {
		return n, os.NewSyscallError("writev", err)
	}
	return n, nil
}

func ignoringEINTR(f func() (int, error)) (int, error) {
	for {
		n, err := f()
		if err != unix.EINTR {
			return n, err
		}
	}
}

// Close closes the socket, wakes blocked reads and writes, a parked
// Conn's onWake and a waiting write handler. It is idempotent.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	wake := c.wakeLocked()
	wwake := c.wakeWriterLocked()
	if c.armed != 0 {
		c.p.ctl(c, c.armed, 0)
		c.armed = 0
	}
	if c.rt != nil {
		c.rt.Stop()
	}
	if c.wt != nil {
		c.wt.Stop()
	}
	err := unix.Close(c.fd)
	c.mu.Unlock()
	goAll(wake, wwake)
	if err != nil {
		return os.NewSyscallError("close", err)
	}
	return nil
}

// SetReadDeadline sets when reads fail with os.ErrDeadlineExceeded (zero:
// never). Passing it wakes a blocked Read, and a parked Conn's onWake.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rdl = toDeadline(t)
	c.rt = c.armTimer(c.rt, t, true)
	return nil
}

// SetWriteDeadline sets when writes fail with os.ErrDeadlineExceeded
// (zero: never); passing it wakes a blocked Write and a write handler
// waiting (WaitWritable).
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wdl = toDeadline(t)
	c.wt = c.armTimer(c.wt, t, false)
	return nil
}

// SetDeadline sets both deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

// armTimer (c.mu held) makes t wake the readers (read) or the writer at
// deadline d, or stops it.
func (c *Conn) armTimer(t *time.Timer, d time.Time, read bool) *time.Timer {
	if d.IsZero() || c.closed {
		// Cleared: the timer goes (most Conns have a deadline once, a
		// link's wait for STREAMTYPE, then none). A stopped timer's
		// function that runs anyway finds no deadline passed.
		if t != nil {
			t.Stop()
		}
		return nil
	}
	wait := time.Until(d)
	if wait <= 0 {
		if t != nil {
			t.Stop()
		}
		if wake := c.expiredLocked(read); wake != nil {
			go wake()
		}
		return t
	}
	if t == nil {
		return time.AfterFunc(wait, func() { c.deadline(read) })
	}
	t.Reset(wait)
	return t
}

// deadline runs when a deadline timer fires: it wakes the waiters if the
// deadline (which may have moved since) has passed.
func (c *Conn) deadline(read bool) {
	c.mu.Lock()
	d := c.wdl
	if read {
		d = c.rdl
	}
	if c.closed || !d.passed() {
		c.mu.Unlock()
		return
	}
	wake := c.expiredLocked(read)
	c.mu.Unlock()
	if wake != nil {
		go wake()
	}
}

// expiredLocked wakes who waits for the deadline that passed: a blocked
// Read and a parked Conn's owner (read), or a blocked Write and a waiting
// write handler.
func (c *Conn) expiredLocked(read bool) func() {
	if read {
		return c.wakeLocked()
	}
	signal(c.wsig)
	return c.wakeWriterLocked()
}

// Poller returns the Poller that watches c.
func (c *Conn) Poller() *Poller { return c.p }

// LocalAddr returns the adopted connection's local address (for a TCP or
// Unix socket first asked after Close: the zero address of its kind).
func (c *Conn) LocalAddr() net.Addr { return c.addr(false) }

// RemoteAddr returns the adopted connection's remote address (for a TCP or
// Unix socket first asked after Close: the zero address of its kind).
func (c *Conn) RemoteAddr() net.Addr { return c.addr(true) }

// addr returns the remote or local address, reading it from the socket
// the first time.
func (c *Conn) addr(remote bool) net.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.addrs == nil {
		c.addrs = &connAddrs{}
	}
	p := &c.addrs.local
	if remote {
		p = &c.addrs.remote
	}
	if *p != nil || c.kind == addrKept {
		return *p
	}
	var sa unix.Sockaddr
	var err error
	if !c.closed {
		if remote {
			sa, err = unix.Getpeername(c.fd)
		} else {
			sa, err = unix.Getsockname(c.fd)
		}
	}
	if c.closed || err != nil {
		sa = nil
	}
	a := c.kind.addr(sa)
	if sa != nil {
		*p = a
	}
	return a
}

// addr converts a socket address (nil: the zero address of the kind).
func (k addrKind) addr(sa unix.Sockaddr) net.Addr {
	switch k {
	case addrTCP:
		switch sa := sa.(type) {
		case *unix.SockaddrInet4:
			return &net.TCPAddr{IP: append(net.IP(nil), sa.Addr[:]...), Port: sa.Port}
		case *unix.SockaddrInet6:
			ta := &net.TCPAddr{IP: append(net.IP(nil), sa.Addr[:]...), Port: sa.Port}
			if sa.ZoneId != 0 {
				if ifi, err := net.InterfaceByIndex(int(sa.ZoneId)); err == nil {
					ta.Zone = ifi.Name
				}
			}
			return ta
		}
		return &net.TCPAddr{}
	default:
		ua := &net.UnixAddr{Net: "unix"}
		if k == addrUnixpacket {
			ua.Net = "unixpacket"
		}
		if sa, ok := sa.(*unix.SockaddrUnix); ok {
			ua.Name = sa.Name
		}
		return ua
	}
}
