package ss

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/stream"
	"github.com/securestreams/ss/internal/transport/httpc"
	"github.com/securestreams/ss/policy"
)

// captivePortalName is the system streamtype that checks connectivity.
const captivePortalName = "captive_portal_detect"

// defaultCPDTimeout is the check's time limit when the streamtype has no
// timeout_ms.
const defaultCPDTimeout = 3 * time.Second

// NetworkState is the result of captive portal detection
// (docs/captive-portal.md).
type NetworkState int

// Network states.
const (
	// NetworkUnknown: no check has finished since the runtime started or
	// the application reported a network change.
	NetworkUnknown NetworkState = iota
	// InternetOK: the check's request got the expected answer.
	InternetOK
	// CaptivePortal: the check was redirected (http_fail_redirect), or got
	// another 2xx/3xx status than http_expect, or 511: a portal.
	CaptivePortal
	// NoInternet: the check could not reach its endpoint (refused, DNS,
	// TLS, time limit, retries exhausted) or got an error answer.
	NoInternet
)

// String returns the state's name ("Unknown", "InternetOK", ...).
func (n NetworkState) String() string {
	switch n {
	case NetworkUnknown:
		return "Unknown"
	case InternetOK:
		return "InternetOK"
	case CaptivePortal:
		return "CaptivePortal"
	case NoInternet:
		return "NoInternet"
	}
	return fmt.Sprintf("NetworkState(%d)", int(n))
}

// ErrNoCaptivePortalDetect: the installed policy has no
// captive_portal_detect streamtype.
var ErrNoCaptivePortalDetect = errors.New("ss: the policy has no captive_portal_detect streamtype")

// NotOnlineError is the cause a stream held by Config.HoldUntilOnline
// reports: the network state that holds it.
type NotOnlineError struct{ State NetworkState }

func (e *NotOnlineError) Error() string {
	return "ss: connection attempts are held until the network is InternetOK (it is " + e.State.String() + ")"
}

// netMonitor runs captive portal detection: one check at a time, the
// current state, watchers (the HoldUntilOnline gates) and a bounded
// channel of results.
type netMonitor struct {
	sys *system

	mu       sync.Mutex
	state    NetworkState
	running  chan struct{} // closed when the running check ends; nil when none
	watchers map[int]func()
	nextID   int
	out      chan NetworkState
	closed   bool
}

func newNetMonitor(sys *system) *netMonitor {
	return &netMonitor{sys: sys, watchers: map[int]func(){}, out: make(chan NetworkState, fetchOutcomes)}
}

// CheckNetwork runs captive portal detection now with the policy's
// captive_portal_detect streamtype (docs/captive-portal.md) and returns its
// result, also sent to NetworkStates. A call made while a check runs waits
// for that check's result instead of starting another.
func (rt *Runtime) CheckNetwork(ctx context.Context) (NetworkState, error) {
	if rt.proxy != nil {
		return NetworkUnknown, ErrProxiedSystem
	}
	ctx, done := rt.sys.bind(ctx)
	defer done()
	return rt.sys.net.check(ctx)
}

// NetworkState returns the result of the last captive portal check
// (NetworkUnknown before the first, and after NetworkChanged).
func (rt *Runtime) NetworkState() NetworkState {
	m := rt.sys.net
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state
}

// NetworkStates delivers every check result and every reset to
// NetworkUnknown by NetworkChanged, in order. When the application has not
// read the last 8, the oldest is dropped, so a reader always finds the
// newest. It is closed when the runtime is closed.
func (rt *Runtime) NetworkStates() <-chan NetworkState { return rt.sys.net.out }

// NetworkChanged tells the runtime that the network changed (a new
// interface, a new Wi-Fi network): the state returns to NetworkUnknown and,
// when the policy has a captive_portal_detect streamtype, a check starts in
// the background. With Config.HoldUntilOnline, new connection attempts wait
// for its result; connections that are up are not touched.
func (rt *Runtime) NetworkChanged() {
	if rt.proxy != nil {
		return
	}
	m := rt.sys.net
	m.set(NetworkUnknown)
	m.checkInBackground()
}

// check runs a check, or waits for the running one.
func (m *netMonitor) check(ctx context.Context) (NetworkState, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return NetworkUnknown, ErrClosed
	}
	if done := m.running; done != nil {
		m.mu.Unlock()
		select {
		case <-done:
			return m.current(), nil
		case <-ctx.Done():
			return NetworkUnknown, ctx.Err()
		}
	}
	done := make(chan struct{})
	m.running = done
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.running = nil
		m.mu.Unlock()
		close(done)
	}()
	st, err := m.detect(ctx)
	if err != nil {
		return NetworkUnknown, err
	}
	m.sys.rt.env.Logger.Info("ss: captive portal detection", "result", st.String())
	m.set(st)
	return st, nil
}

// checkInBackground starts a check unless one is running.
func (m *netMonitor) checkInBackground() {
	m.mu.Lock()
	busy := m.running != nil || m.closed
	m.mu.Unlock()
	if busy || m.sys.rt.pol.Load().Streamtype(captivePortalName) == nil {
		return
	}
	m.sys.go_(func() { _, _ = m.check(m.sys.ctx) })
}

func (m *netMonitor) current() NetworkState {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state
}

// set records a state, publishes it and wakes the gates.
func (m *netMonitor) set(st NetworkState) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.state = st
	offer(m.out, st)
	notify := make([]func(), 0, len(m.watchers))
	for _, f := range m.watchers {
		notify = append(notify, f)
	}
	m.mu.Unlock()
	for _, f := range notify {
		f()
	}
}

func (m *netMonitor) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.closed {
		m.closed = true
		close(m.out)
	}
}

// detect runs one captive_portal_detect stream to its first result
// (docs/captive-portal.md): QOS_ACK_REMOTE is InternetOK; a redirect
// refused by http_fail_redirect, or a status other than http_expect, is
// CaptivePortal; QOS_NACK_REMOTE, TIMEOUT, ALL_RETRIES_FAILED and a
// connection lost before the answer are NoInternet.
func (m *netMonitor) detect(ctx context.Context) (NetworkState, error) {
	rt := m.sys.rt
	pol := rt.pol.Load()
	st := pol.Streamtype(captivePortalName)
	if st == nil {
		return NetworkUnknown, ErrNoCaptivePortalDetect
	}
	s, err := rt.createSystemStream(pol, st, rt.gatesFor(st))
	if err != nil {
		return NetworkUnknown, err
	}
	defer drainDestroy(s)
	d := time.Duration(st.TimeoutMS) * time.Millisecond
	if d == 0 {
		d = defaultCPDTimeout
	}
	if err := s.StartTimeout(d); err != nil {
		return NetworkUnknown, err
	}
	if err := s.RequestTx(); err != nil {
		return NetworkUnknown, err
	}
	for {
		ev, err := nextEvent(ctx, s)
		if err != nil {
			return NetworkUnknown, err
		}
		if ev.Kind != StateEvent {
			continue
		}
		switch ev.State {
		case QoSAckRemote:
			return InternetOK, nil
		case Unreachable:
			if portalAnswer(st, ev.Err) {
				return CaptivePortal, nil
			}
		case QoSNackRemote, Timeout, AllRetriesFailed, Disconnected:
			return NoInternet, nil
		case Destroying:
			return NetworkUnknown, ErrClosed
		}
	}
}

// portalAnswer reports an attempt failure that shows a captive portal: a
// redirect refused by http_fail_redirect, or (with http_expect) another
// 2xx/3xx answer (a login page served in place of the expected one) or
// 511 Network Authentication Required (RFC 6585).
func portalAnswer(st *policy.Streamtype, err error) bool {
	if err == nil {
		return false
	}
	if st.HTTPFailRedirect && errors.Is(err, httpc.ErrRedirect) {
		return true
	}
	var se *StatusError
	if st.HTTPExpect == 0 || !errors.As(err, &se) || se.Code == st.HTTPExpect {
		return false
	}
	return se.Code >= 200 && se.Code <= 399 || se.Code == http.StatusNetworkAuthenticationRequired
}

// networkGate returns the HoldUntilOnline gate for streams of st, nil when
// the option is off or st is the captive_portal_detect streamtype itself.
func (rt *Runtime) networkGate(st *policy.Streamtype) stream.Gate {
	if rt.sys == nil || !rt.sys.cfg.HoldUntilOnline || st.Name == captivePortalName || st.Server {
		return nil
	}
	return (*onlineGate)(rt.sys.net)
}

// onlineGate holds connection attempts until the network is InternetOK
// (Config.HoldUntilOnline). It is open when the installed policy has no
// captive_portal_detect streamtype (nothing could ever open it). A closed
// gate with no check running and none done starts one.
type onlineGate netMonitor

// Check implements stream.Gate.
func (g *onlineGate) Check() (bool, event.State, error) {
	m := (*netMonitor)(g)
	if m.sys.rt.pol.Load().Streamtype(captivePortalName) == nil {
		return true, 0, nil
	}
	st := m.current()
	if st == InternetOK {
		return true, 0, nil
	}
	if st == NetworkUnknown {
		m.checkInBackground()
	}
	return false, 0, &NotOnlineError{State: st}
}

// Watch implements stream.Gate.
func (g *onlineGate) Watch(notify func()) func() {
	m := (*netMonitor)(g)
	m.mu.Lock()
	id := m.nextID
	m.nextID++
	m.watchers[id] = notify
	m.mu.Unlock()
	return func() {
		m.mu.Lock()
		delete(m.watchers, id)
		m.mu.Unlock()
	}
}
