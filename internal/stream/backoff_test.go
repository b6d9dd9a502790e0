package stream

import (
	"testing"
	"time"
)

func steps(b Backoff, n int, retryAfter time.Duration, rnd func(int64) int64) (delays []time.Duration, exhaustedAt int) {
	var failures uint16
	for i := 1; i <= n; i++ {
		d, ok := b.Step(&failures, retryAfter, rnd)
		if !ok {
			return delays, i
		}
		delays = append(delays, d)
	}
	return delays, 0
}

func noJitter(int64) int64 { panic("jitter drawn with jitterpc 0") }

func eq(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

const ms = time.Millisecond

// §6.2 test vectors.
func TestBackoffVectors(t *testing.T) {
	d, at := steps(BackoffFor(rtry(5, 0, 1000, 2000, 3000)), 10, 0, noJitter)
	if !eq(d, []time.Duration{1000 * ms, 2000 * ms, 3000 * ms, 3000 * ms, 3000 * ms}) || at != 6 {
		t.Errorf("[1000,2000,3000] conceal 5: %v, exhausted at failure %d", d, at)
	}
	d, at = steps(BackoffFor(rtry(1, 0)), 10, 0, noJitter)
	if !eq(d, []time.Duration{3000 * ms}) || at != 2 {
		t.Errorf("no table, conceal 1: %v, exhausted at %d", d, at)
	}
	d, at = steps(BackoffFor(rtry(2, 0, 300)), 10, 2*time.Second, noJitter)
	if !eq(d, []time.Duration{2000 * ms, 2000 * ms}) || at != 3 {
		t.Errorf("[300] Retry-After 2s: %v, exhausted at %d", d, at)
	}
	// conceal 0 and no retry policy: the first failure is final.
	if _, at = steps(BackoffFor(rtry(0, 0, 100)), 3, 0, noJitter); at != 1 {
		t.Errorf("conceal 0 exhausted at %d", at)
	}
	if _, at = steps(BackoffFor(nil), 3, 0, noJitter); at != 1 {
		t.Errorf("no retry policy exhausted at %d", at)
	}
}

func TestBackoffJitter(t *testing.T) {
	var asked []int64
	top := func(n int64) int64 { asked = append(asked, n); return n - 1 }
	d, _ := steps(BackoffFor(rtry(3, 30, 1000, 10)), 3, 0, top)
	// J = 300 → [1000, 1300); J = 3 for 10 → [10, 13).
	if !eq(d, []time.Duration{1299 * ms, 12 * ms, 12 * ms}) || len(asked) != 3 || asked[0] != 300 || asked[1] != 3 {
		t.Errorf("jitter 30%%: delays %v, asked %v", d, asked)
	}
	// J truncates to 0: no jitter drawn.
	d, _ = steps(BackoffFor(rtry(1, 30, 3)), 1, 0, noJitter)
	if !eq(d, []time.Duration{3 * ms}) {
		t.Errorf("tiny base: %v", d)
	}
}

func TestBackoffForever(t *testing.T) {
	var failures uint16
	b := BackoffFor(rtry(Forever, 0, 5))
	for i := 0; i < 70000; i++ {
		if _, ok := b.Step(&failures, 0, noJitter); !ok {
			t.Fatalf("conceal 65535 gave up at step %d", i+1)
		}
	}
	if failures != Forever {
		t.Fatalf("counter %d, want saturated 65535", failures)
	}
}

func TestHealth(t *testing.T) {
	if h := BackoffFor(rtry(1, 30, 250, 1000)).Health(); h != 250*ms {
		t.Errorf("health %v", h)
	}
	if h := BackoffFor(nil).Health(); h != 3000*ms {
		t.Errorf("health without table %v", h)
	}
}
