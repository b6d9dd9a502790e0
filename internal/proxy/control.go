package proxy

import (
	"context"
	"sync"
	"time"
)

// control coalesces a link's control frames (ServerLimits.ControlRate).
//
// Each control operation the onward stream is given (Connect,
// StartTimeout, CancelTimeout, SetTxLen) becomes a message in that stream
// actor's mailbox, which is unbounded: so the link gives them at most rate
// per second (a token bucket), and what the client asks for meanwhile is
// kept as coalescing state, not as a queue: one pending connect, the latest
// timeout request, the latest length hint. A timer applies them when the
// bucket allows; before a TX_PAYLOAD the reader applies them itself
// (waiting for a token, without reading the link), so that a length hint
// still precedes the payload it announces.
type control struct {
	os    OnwardStream
	rate  float64 // tokens per second; 0: no limit
	burst float64

	amu sync.Mutex // held while applying: one application at a time, in order

	mu      sync.Mutex
	tokens  float64
	last    time.Time
	pend    pendingControl
	timer   *time.Timer
	stopped bool
	err     error // the onward stream refused an operation the timer applied
}

// pendingControl is what the client has asked for and the onward stream
// has not been given yet.
type pendingControl struct {
	connect bool
	timeout bool
	millis  uint32 // TimeoutCancel, TimeoutDefault or ms
	txLen   bool
	n       int64
}

func (p pendingControl) empty() bool { return !p.connect && !p.timeout && !p.txLen }

func newControl(os OnwardStream, rate float64, burst int) *control {
	return &control{os: os, rate: rate, burst: float64(burst), tokens: float64(burst), last: time.Now()}
}

// take refills the bucket and takes a token if there is one; otherwise it
// returns how long until there is. Called with c.mu held.
func (c *control) take(now time.Time) (bool, time.Duration) {
	if c.rate <= 0 {
		return true, 0
	}
	c.tokens = min(c.burst, c.tokens+now.Sub(c.last).Seconds()*c.rate)
	c.last = now
	if c.tokens >= 1 {
		c.tokens--
		return true, 0
	}
	return false, time.Duration((1 - c.tokens) / c.rate * float64(time.Second))
}

// request records a control frame and applies what is pending if the rate
// allows, else leaves it to the timer. It returns an error when the onward
// stream refused an operation.
func (c *control) request(update func(*pendingControl)) error {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return nil
	}
	if err := c.err; err != nil {
		c.mu.Unlock()
		return err
	}
	update(&c.pend)
	if c.timer != nil {
		// Over the rate: the timer applies it (the cheap path of a flood).
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	c.amu.Lock()
	defer c.amu.Unlock()
	c.mu.Lock()
	if c.stopped || c.pend.empty() {
		// The timer applied it meanwhile.
		c.mu.Unlock()
		return nil
	}
	ok, wait := c.take(time.Now())
	if !ok {
		if c.timer == nil {
			c.timer = time.AfterFunc(wait, c.fire)
		}
		c.mu.Unlock()
		return nil
	}
	p := c.pend
	c.pend = pendingControl{}
	c.mu.Unlock()
	return c.apply(p)
}

// fire applies what is pending once the bucket has a token again.
func (c *control) fire() {
	c.amu.Lock()
	defer c.amu.Unlock()
	c.mu.Lock()
	c.timer = nil
	if c.stopped || c.pend.empty() {
		c.mu.Unlock()
		return
	}
	ok, wait := c.take(time.Now())
	if !ok {
		c.timer = time.AfterFunc(wait, c.fire)
		c.mu.Unlock()
		return
	}
	p := c.pend
	c.pend = pendingControl{}
	c.mu.Unlock()
	if err := c.apply(p); err != nil {
		c.mu.Lock()
		if c.err == nil {
			c.err = err
		}
		c.mu.Unlock()
	}
}

// flush applies what is pending before a frame that depends on it, waiting
// for a token; it returns early when ctx ends.
func (c *control) flush(ctx context.Context) error { return c.spend(ctx, false) }

// spend waits for a token (when one is needed: something pending, or
// always) and applies what is pending.
func (c *control) spend(ctx context.Context, always bool) error {
	c.amu.Lock()
	defer c.amu.Unlock()
	for {
		done, wait, err := c.spendLocked(always)
		if done || err != nil {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// trySpend is spend without waiting: false when a token is needed and
// there is none yet (nothing is applied then).
func (c *control) trySpend(always bool) (bool, error) {
	c.amu.Lock()
	defer c.amu.Unlock()
	done, _, err := c.spendLocked(always)
	return done || err != nil, err
}

// spendLocked applies what is pending if no token is needed or one is
// available (done), else returns how long until there is one. c.amu is
// held.
func (c *control) spendLocked(always bool) (done bool, wait time.Duration, err error) {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return true, 0, nil
	}
	if err := c.err; err != nil {
		c.mu.Unlock()
		return true, 0, err
	}
	if !always && c.pend.empty() {
		c.mu.Unlock()
		return true, 0, nil
	}
	ok, wait := c.take(time.Now())
	if !ok {
		c.mu.Unlock()
		return false, wait, nil
	}
	p := c.pend
	c.pend = pendingControl{}
	c.mu.Unlock()
	return true, 0, c.apply(p)
}

// apply gives the onward stream what was pending: the timeout, the length
// hint, then the connect request. Called with c.amu held.
func (c *control) apply(p pendingControl) error {
	if p.timeout {
		var err error
		if p.millis == TimeoutCancel {
			err = c.os.CancelTimeout()
		} else {
			err = c.os.StartTimeout(time.Duration(p.millis) * time.Millisecond)
		}
		if err != nil {
			return err
		}
	}
	if p.txLen {
		if err := c.os.SetTxLen(p.n); err != nil {
			return err
		}
	}
	if p.connect {
		return c.os.Connect(context.Background())
	}
	return nil
}

// stop discards what is pending, stops the timer and waits for an
// application in progress; nothing is applied afterwards. Call it once the
// reader no longer uses c.
func (c *control) stop() {
	c.mu.Lock()
	c.stopped = true
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	c.mu.Unlock()
	c.amu.Lock()
	c.amu.Unlock()
}
