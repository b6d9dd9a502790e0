package ssproxytest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Daemon is an ssproxy process started by a test. Its stderr (the log) is
// collected line by line.
type Daemon struct {
	Cmd     *exec.Cmd
	Address string

	mu     sync.Mutex
	lines  []string
	grew   chan struct{} // closed and replaced when a line arrives
	exited chan struct{} // closed when the process has exited
	err    error         // Wait's result
}

// Start runs bin with args (plus env, appended to the environment) and
// returns once it has started; at cleanup it is killed if still running.
// address is recorded for the test's convenience.
func Start(tb testing.TB, bin, address string, env []string, args ...string) *Daemon {
	tb.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	pr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	d := &Daemon{Cmd: cmd, Address: address, grew: make(chan struct{}), exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			d.mu.Lock()
			d.lines = append(d.lines, sc.Text())
			close(d.grew)
			d.grew = make(chan struct{})
			d.mu.Unlock()
		}
		err := cmd.Wait()
		d.mu.Lock()
		d.err = err
		d.mu.Unlock()
		close(d.exited)
	}()
	tb.Cleanup(func() {
		select {
		case <-d.exited:
		default:
			cmd.Process.Kill()
			<-d.exited
		}
	})
	return d
}

// Log returns the log so far.
func (d *Daemon) Log() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return strings.Join(d.lines, "\n")
}

// WaitLog waits until a log line contains every one of subs, and returns
// it; it fails the test after timeout or when the process exits first.
func (d *Daemon) WaitLog(tb testing.TB, timeout time.Duration, subs ...string) string {
	tb.Helper()
	end := time.After(timeout)
	seen := 0
	for {
		d.mu.Lock()
		for ; seen < len(d.lines); seen++ {
			if containsAll(d.lines[seen], subs) {
				l := d.lines[seen]
				d.mu.Unlock()
				return l
			}
		}
		grew := d.grew
		d.mu.Unlock()
		select {
		case <-grew:
		case <-d.exited:
			// Drain what arrived with the exit.
			d.mu.Lock()
			n := len(d.lines)
			d.mu.Unlock()
			if seen == n {
				tb.Fatalf("ssproxy exited (%v) before logging %q; log:\n%s", d.exitErr(), subs, d.Log())
			}
		case <-end:
			tb.Fatalf("ssproxy did not log %q within %v; log:\n%s", subs, timeout, d.Log())
		}
	}
}

// CountLog returns the number of log lines containing every one of subs.
func (d *Daemon) CountLog(subs ...string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, l := range d.lines {
		if containsAll(l, subs) {
			n++
		}
	}
	return n
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

func (d *Daemon) exitErr() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// Signal sends sig to the process.
func (d *Daemon) Signal(tb testing.TB, sig syscall.Signal) {
	tb.Helper()
	if err := d.Cmd.Process.Signal(sig); err != nil {
		tb.Fatalf("signal %v: %v", sig, err)
	}
}

// Exited is closed when the process has exited.
func (d *Daemon) Exited() <-chan struct{} { return d.exited }

// Stop sends sig and waits for the exit; it returns the exit code and how
// long the exit took, or fails the test when it takes longer than within
// (the process is then killed).
func (d *Daemon) Stop(tb testing.TB, sig syscall.Signal, within time.Duration) (code int, took time.Duration) {
	tb.Helper()
	start := time.Now()
	d.Signal(tb, sig)
	select {
	case <-d.exited:
	case <-time.After(within):
		d.Cmd.Process.Kill()
		<-d.exited
		tb.Fatalf("ssproxy did not exit within %v of %v; log:\n%s", within, sig, d.Log())
	}
	took = time.Since(start)
	return d.Cmd.ProcessState.ExitCode(), took
}

// RSS returns the process's resident set size in bytes (Linux /proc).
func (d *Daemon) RSS() (int64, error) {
	return RSS(d.Cmd.Process.Pid)
}

// RSS returns the resident set size of process pid in bytes, from
// /proc/PID/status (VmRSS).
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, l := range bytes.Split(b, []byte("\n")) {
		if f := strings.Fields(string(l)); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return 0, err
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}
