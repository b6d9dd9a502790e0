//go:build linux

// Package evloop parks sockets in one shared epoll set, watched by one
// goroutine (the set's own descriptor waits in the Go runtime's netpoller),
// so that an idle socket costs no goroutine and a readable one is handled
// inline on that goroutine, without a wake-up of a goroutine of its own
// (docs/proxy.md, "Event loop").
//
// A Poller owns the epoll set; Adopt turns a net.Conn into a *Conn whose
// descriptor only the Poller watches (the Go runtime's netpoller no longer
// does). A Conn is read either inline (Park: the Poller calls the handler
// when the socket is readable) or by a goroutine (Read, blocking or not);
// writes are non-blocking (TryWrite) or wait for room (Write). Readiness
// is level-triggered: a handler that leaves data unread is called again.
//
// Events for a descriptor that was closed are dropped, also when its
// number has been reused by a newer Conn meanwhile: each Conn's
// registration carries a generation in the epoll data, and an event whose
// generation is not the Conn's is ignored (dispatch).
package evloop

import (
	"errors"
	"os"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Config configures a Poller; the zero value is the default (no busy
// polling).
type Config struct {
	// BusyPoll, when positive, is how long the Poller keeps polling its
	// set without sleeping after a wait that returned events: an answer
	// that arrives meanwhile (the echo of what a handler just wrote) is
	// dispatched without the thread going to sleep and being woken.
	// Each poll that finds nothing yields twice: the goroutine's P
	// (runtime.Gosched: goroutines queued on it run) and the thread's
	// core (sched_yield: other runnable threads and processes run). Every
	// batch found starts the time again, so under events closer together
	// than BusyPoll the thread never sleeps. It pays only with a spare
	// core; on a loaded machine it costs latency (docs/proxy.md, "Event
	// loop").
	BusyPoll time.Duration
}

// Poller is one epoll set and the goroutine that waits on it and
// dispatches readiness.
type Poller struct {
	epfd int
	wake [2]int        // pipe: writing to wake[1] makes the loop exit
	busy time.Duration // Config.BusyPoll

	mu      sync.Mutex
	conns   map[int]*Conn // registered descriptors
	lastGen uint32        // the generation given to the last adopted Conn
	closed  bool
	done    chan struct{}
}

// NewPoller creates a Poller with the default Config and starts its
// goroutine.
func NewPoller() (*Poller, error) { return NewPollerConfig(Config{}) }

// NewPollerConfig creates a Poller configured by cfg and starts its
// goroutine.
func NewPollerConfig(cfg Config) (*Poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	p := &Poller{epfd: epfd, busy: max(cfg.BusyPoll, 0), conns: map[int]*Conn{}, done: make(chan struct{})}
	if err := unix.Pipe2(p.wake[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("pipe2", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(p.wake[0])}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, p.wake[0], &ev); err != nil {
		unix.Close(epfd)
		unix.Close(p.wake[0])
		unix.Close(p.wake[1])
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	go p.loop()
	return p, nil
}

// Close stops the Poller's goroutine and waits for it. Conns still open
// keep working for non-blocking reads and writes; Park and blocking waits
// fail on them. Close is idempotent.
func (p *Poller) Close() error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		unix.Write(p.wake[1], []byte{1})
	}
	p.mu.Unlock()
	<-p.done
	return nil
}

// loop waits for readiness and dispatches it. It waits in the Go
// runtime's netpoller (the epoll set's own descriptor is watched there), not
// in a blocking epoll_wait: a goroutine that a handler wakes or starts (a
// link handed to a goroutine, a blocked Read or Write signalled) is queued
// on this goroutine's P, and a thread blocked in epoll_wait would hold that
// P until the scheduler's monitor took it back, 20 µs to 10 ms later. Parked
// in the netpoller instead, the goroutine gives the P up at once (PERFORMANCE.md,
// "Proxied 16 KiB tx, in-process").
func (p *Poller) loop() {
	defer close(p.done)
	defer func() {
		unix.Close(p.wake[0])
		unix.Close(p.wake[1])
	}()
	ep := os.NewFile(uintptr(p.epfd), "epoll") // closes epfd
	defer ep.Close()
	rc, err := ep.SyscallConn()
	if err != nil {
		p.failAll()
		return
	}
	events := make([]unix.EpollEvent, 128)
	var n int
	var werr error
	poll := func(fd uintptr) bool {
		n, werr = unix.EpollWait(int(fd), events, 0)
		if werr == unix.EINTR {
			n, werr = 0, nil
			return false
		}
		return werr != nil || n > 0 // else wait for the set to be readable
	}
	for {
		err := rc.Read(poll)
		if err == nil {
			err = werr
		}
		if err != nil {
			p.failAll()
			return
		}
		if !p.dispatchAll(events[:n]) || !p.spin(events) {
			p.failAll()
			return
		}
	}
}

// dispatchAll dispatches a batch of events; false when the wake pipe is
// among them (the Poller is closing).
func (p *Poller) dispatchAll(events []unix.EpollEvent) bool {
	for i := range events {
		if int(events[i].Fd) == p.wake[0] {
			return false
		}
		p.dispatch(&events[i])
	}
	return true
}

// spin busy-polls the set after a batch of events was dispatched
// (Config.BusyPoll): it polls without blocking and dispatches what it
// finds until BusyPoll has passed since the last batch, yielding the P
// and the core between polls. It returns false when the loop must end
// (the wake pipe, or a failed poll).
func (p *Poller) spin(events []unix.EpollEvent) bool {
	if p.busy <= 0 {
		return true
	}
	until := time.Now().Add(p.busy)
	for {
		n, err := pollNow(p.epfd, events)
		switch {
		case err == unix.EINTR:
		case err != nil:
			return false
		case n > 0:
			if !p.dispatchAll(events[:n]) {
				return false
			}
			until = time.Now().Add(p.busy)
			continue
		}
		if !time.Now().Before(until) {
			return true
		}
		// Yield both: with the P alone, a spinning thread took a core
		// from the peer it waits for (2 cores, PERFORMANCE.md,
		// "ssproxy": 1.5–2× the p50 and 2× the CPU per round trip).
		runtime.Gosched()
		unix.RawSyscall(unix.SYS_SCHED_YIELD, 0, 0, 0)
	}
}

// pollNow is epoll_wait with a zero timeout, made as a raw system call: it
// never blocks, so the runtime need not be told (no entersyscall /
// exitsyscall, and the P stays with the goroutine, which a spin wants).
func pollNow(epfd int, events []unix.EpollEvent) (int, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd),
		uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// dispatch hands one event to the Conn registered for its descriptor,
// unless the event is stale: reported for an earlier Conn whose
// descriptor number the registered one reuses (the generations differ).
func (p *Poller) dispatch(ev *unix.EpollEvent) {
	p.mu.Lock()
	c := p.conns[int(ev.Fd)]
	p.mu.Unlock()
	if c != nil && uint32(ev.Pad) == c.gen {
		c.ready(ev.Events)
	}
}

// nextGen returns the generation of a newly adopted Conn.
func (p *Poller) nextGen() uint32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastGen++
	return p.lastGen
}

// failAll wakes every waiter and parked Conn once the loop ends: nothing
// will report their readiness any more.
func (p *Poller) failAll() {
	p.mu.Lock()
	p.closed = true
	cs := make([]*Conn, 0, len(p.conns))
	for _, c := range p.conns {
		cs = append(cs, c)
	}
	p.mu.Unlock()
	for _, c := range cs {
		c.pollerGone()
	}
}

// ctl sets the events fd is watched for: none removes it from the set.
// was is what it was watched for (0: not in the set).
func (p *Poller) ctl(c *Conn, was, events uint32) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errPollerClosed
	}
	ev := unix.EpollEvent{Events: events, Fd: int32(c.fd), Pad: int32(c.gen)}
	var err error
	switch {
	case events == 0:
		delete(p.conns, c.fd)
		err = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	case was == 0:
		p.conns[c.fd] = c
		err = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, c.fd, &ev)
	default:
		err = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, c.fd, &ev)
	}
	if err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

var errPollerClosed = errors.New("evloop: poller closed")
