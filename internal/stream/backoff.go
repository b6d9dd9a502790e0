package stream

import (
	"time"

	"github.com/securestreams/ss/policy"
)

// Forever is the conceal value that retries without end.
const Forever = 65535

// defaultBase is the base delay when the retry policy has no backoff table.
const defaultBase = 3000 // ms

// Backoff is a streamtype's retry policy as the backoff step uses it
// (docs/streams.md §6.1).
type Backoff struct {
	Table   []uint32 // ms; empty: 3000 ms base
	Conceal uint16   // 65535 = forever
	Pct     uint8    // jitter percentage
}

// BackoffFor returns the backoff of retry policy r; nil (no retry key)
// behaves as conceal 0.
func BackoffFor(r *policy.Retry) Backoff {
	if r == nil {
		return Backoff{Pct: 30}
	}
	return Backoff{Table: r.Backoff, Conceal: r.Conceal, Pct: r.JitterPct}
}

// Step is the backoff step of docs/streams.md §6.2. failures is the stream's
// consecutive-failure counter (updated, saturating at 65535); retryAfter is
// the HTTP Retry-After minimum (0 when none); rnd returns a uniform integer
// in [0, n). It returns retry == false when the policy is exhausted
// (ALL_RETRIES_FAILED), else the delay before the next attempt.
func (b Backoff) Step(failures *uint16, retryAfter time.Duration, rnd func(n int64) int64) (delay time.Duration, retry bool) {
	n := *failures
	if *failures < Forever {
		*failures++
	}
	if *failures > b.Conceal {
		return 0, false
	}
	base := int64(defaultBase)
	if len(b.Table) > 0 {
		base = int64(b.Table[min(int(n), len(b.Table)-1)])
	}
	j := base * int64(b.Pct) / 100
	var jit int64
	if j > 0 {
		jit = rnd(j)
	}
	delay = time.Duration(base+jit) * time.Millisecond
	return max(delay, retryAfter), true
}

// Health is how long a connection must stay CONNECTED before the failure
// counter is reset (docs/streams.md §6.3): table[0] without jitter, else 3000 ms.
func (b Backoff) Health() time.Duration {
	if len(b.Table) > 0 {
		return time.Duration(b.Table[0]) * time.Millisecond
	}
	return defaultBase * time.Millisecond
}
