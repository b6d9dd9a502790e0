package stream

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func idleRunners(r *runners) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.idle)
}

// An ended attempt's goroutine runs the next attempt; at most
// maxIdleRunners wait, none after runnerLinger, none after close.
func TestRunnersReuseBoundAndLinger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &runners{quit: make(chan struct{})}
		done := make(chan struct{}, 1)
		r.run(func() { done <- struct{}{} })
		<-done
		synctest.Wait()
		if n := idleRunners(r); n != 1 {
			t.Fatalf("%d idle runners after one attempt, want 1", n)
		}
		r.run(func() {
			if n := idleRunners(r); n != 0 {
				t.Errorf("%d idle runners while the second attempt runs, want 0 (it runs on the idle one)", n)
			}
			done <- struct{}{}
		})
		<-done
		synctest.Wait()
		if n := idleRunners(r); n != 1 {
			t.Fatalf("%d idle runners after the second attempt, want 1", n)
		}

		// A burst: 10 attempts at once, then at most maxIdleRunners wait.
		var wg sync.WaitGroup
		release := make(chan struct{})
		for range 10 {
			wg.Add(1)
			r.run(func() { defer wg.Done(); <-release })
		}
		close(release)
		wg.Wait()
		synctest.Wait()
		if n := idleRunners(r); n != maxIdleRunners {
			t.Fatalf("%d idle runners after a burst of 10, want %d", n, maxIdleRunners)
		}

		time.Sleep(runnerLinger + time.Millisecond)
		synctest.Wait()
		if n := idleRunners(r); n != 0 {
			t.Fatalf("%d idle runners after runnerLinger, want 0", n)
		}

		r.run(func() { done <- struct{}{} })
		<-done
		r.close()
		if n := idleRunners(r); n != 0 {
			t.Fatalf("%d idle runners after close, want 0", n)
		}
		r.run(func() { done <- struct{}{} }) // after close: a goroutine of its own
		<-done
		r.close()
	})
}
