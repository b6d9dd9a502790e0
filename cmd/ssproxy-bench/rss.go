package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// readRSS returns VmRSS of process pid in bytes, from /proc/PID/status.
func readRSS(pid int) (int64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/%d/status: VmRSS %q: %v", pid, f[1], err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS line", pid)
}

// rssWatch samples a process's RSS every interval and keeps the peak since
// the last resetPeak.
type rssWatch struct {
	pid  int
	pk   atomic.Int64
	stop chan struct{}
	wg   sync.WaitGroup
}

func watchRSS(pid int, interval time.Duration) (*rssWatch, error) {
	if _, err := readRSS(pid); err != nil {
		return nil, fmt.Errorf("-pid %d: %w", pid, err)
	}
	w := &rssWatch{pid: pid, stop: make(chan struct{})}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		tk := time.NewTicker(interval)
		defer tk.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-tk.C:
				w.now()
			}
		}
	}()
	return w, nil
}

// now reads the RSS (0 if the process is gone) and updates the peak.
func (w *rssWatch) now() int64 {
	v, _ := readRSS(w.pid)
	for {
		p := w.pk.Load()
		if v <= p || w.pk.CompareAndSwap(p, v) {
			return v
		}
	}
}

func (w *rssWatch) peak() int64 { w.now(); return w.pk.Load() }
func (w *rssWatch) resetPeak()  { w.pk.Store(0) }

// Close stops the sampler.
func (w *rssWatch) Close() {
	close(w.stop)
	w.wg.Wait()
}
