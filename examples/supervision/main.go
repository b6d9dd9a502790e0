// Command supervision runs streams under an application's own actors and
// shows what the application's supervisors do to them
// (docs/supervision.md): a restart reconnects a stream, a stop destroys it.
//
// A "session" actor supervises a worker and the stream "session" with an
// all-for-one strategy: when the worker panics, both are restarted, and
// the stream reconnects (DISCONNECTED, CONNECTING, CONNECTED). A second
// stream, "bystander", is a child of the top-level actor and sees nothing
// of it. When the worker panics with "stop", the session's supervisor stops
// its children: the stream is destroyed (DISCONNECTED, DESTROYING).
//
//	go run ./examples/supervision
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/actor"
	"github.com/securestreams/ss/policy"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "supervision:", err)
		os.Exit(1)
	}
}

// echoPolicy has a raw client streamtype, connected from creation, that
// retries quickly.
const echoPolicy = `{
  "release": "supervision",
  "retry": [{ "quick": { "backoff": [50, 100], "conceal": 5, "jitterpc": 0 } }],
  "s": [{
    "echo": { "protocol": "raw", "endpoint": "127.0.0.1", "port": %d, "nailed_up": true, "retry": "quick" }
  }]
}`

// Messages to the worker.
type (
	fail struct{} // panic: the session's supervisor restarts its children
	quit struct{} // panic with "stop": the session's supervisor stops them
)

// run starts a loopback echo server, the streams and the actors, restarts
// and then stops the session, and prints each stream's events to out.
func run(ctx context.Context, out io.Writer) error {
	peer, err := echoServer()
	if err != nil {
		return err
	}
	defer peer.Close()
	p, _, err := policy.Parse(fmt.Appendf(nil, echoPolicy, peer.Addr().(*net.TCPAddr).Port), policy.Options{})
	if err != nil {
		return err
	}
	// The application's actor system; the runtime runs its streams in it.
	sys := actor.NewSystem(nil)
	defer sys.Shutdown(context.Background())
	rt, err := ss.New(ctx, ss.Config{Policy: p, Actors: sys})
	if err != nil {
		return err
	}
	defer rt.Close(ctx)

	session, sessionProps, err := rt.CreateProps(ctx, "echo")
	if err != nil {
		return err
	}
	bystander, bystanderProps, err := rt.CreateProps(ctx, "echo")
	if err != nil {
		return err
	}
	sw, bw := watch(session), watch(bystander)

	// The session actor: an all-for-one supervisor of a worker and the
	// session stream. A worker panic restarts both, unless it says "stop".
	decide := func(reason any) actor.Directive {
		if reason == "stop" {
			return actor.Stop
		}
		return actor.Restart
	}
	workers := make(chan *actor.PID, 1)
	sessionActor := actor.Supervised(actor.PropsFromFunc(func(c actor.Context) {
		switch c.Message().(type) {
		case *actor.Started:
			w, err := actor.SpawnChild(c, actor.PropsFromFunc(worker), "worker-")
			if err == nil {
				_, err = actor.SpawnChild(c, sessionProps, "stream-")
			}
			if err != nil {
				panic(err) // escalated to the top-level actor
			}
			workers <- w
		}
	}), actor.AllForOne(10, time.Minute, decide))
	top, err := sys.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		switch c.Message().(type) {
		case *actor.Started:
			if _, err := actor.SpawnChild(c, sessionActor, "session-"); err != nil {
				panic(err)
			}
			if _, err := actor.SpawnChild(c, bystanderProps, "bystander-"); err != nil {
				panic(err)
			}
		case *actor.Stopped:
			sys.Forget(c.Self()) // actors spawned with System.Spawn say when they stop
		}
	}), "app-")
	if err != nil {
		return err
	}
	defer sys.Stop(top)
	var w *actor.PID
	select {
	case w = <-workers:
	case <-ctx.Done():
		return ctx.Err()
	}

	steps := []struct {
		what string
		do   func() error
	}{
		{"both streams connected", func() error {
			return errors.Join(sw.until(ctx, "CONNECTED", 1), bw.until(ctx, "CONNECTED", 1))
		}},
		{"the worker fails: its supervisor restarts the session, the stream reconnects", func() error {
			sys.Tell(w, fail{})
			return sw.until(ctx, "CONNECTED", 2)
		}},
		{"the session stream still carries data", func() error {
			if err := session.Send(ctx, []byte("after restart")); err != nil {
				return err
			}
			return sw.until(ctx, `rx "after restart"`, 1)
		}},
		{"the worker quits: its supervisor stops the session, the stream is destroyed", func() error {
			sys.Tell(w, quit{})
			return sw.until(ctx, "closed", 1)
		}},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			return fmt.Errorf("%s: %w", s.what, err)
		}
		fmt.Fprintf(out, "-- %s\n", s.what)
	}
	fmt.Fprintf(out, "session:   %s\n", strings.Join(sw.list(), " "))
	fmt.Fprintf(out, "bystander: %s\n", strings.Join(bw.list(), " "))
	if n := rt.Stats().IllegalTransitions; n != 0 {
		return fmt.Errorf("%d illegal state transitions", n)
	}
	return nil
}

// worker is the application's own actor next to the session stream.
func worker(c actor.Context) {
	switch c.Message().(type) {
	case fail:
		panic("worker failed")
	case quit:
		panic("stop")
	}
}

// watcher collects a stream's events ("rx \"payload\"" for payload and
// "closed" when the channel closes).
type watcher struct {
	mu     sync.Mutex
	events []string
	more   chan struct{} // closed and replaced on each event
}

func watch(s *ss.Stream) *watcher {
	w := &watcher{more: make(chan struct{})}
	add := func(e string) {
		w.mu.Lock()
		w.events = append(w.events, e)
		close(w.more)
		w.more = make(chan struct{})
		w.mu.Unlock()
	}
	go func() {
		for ev := range s.Events() {
			if ev.Kind == ss.PayloadEvent {
				add(fmt.Sprintf("rx %q", ev.Payload))
				continue
			}
			add(ev.State.String())
		}
		add("closed")
	}()
	return w
}

func (w *watcher) list() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.events...)
}

// until waits until event e has been seen n times.
func (w *watcher) until(ctx context.Context, e string, n int) error {
	for {
		w.mu.Lock()
		seen := 0
		for _, x := range w.events {
			if x == e {
				seen++
			}
		}
		more := w.more
		w.mu.Unlock()
		if seen >= n {
			return nil
		}
		select {
		case <-more:
		case <-ctx.Done():
			return fmt.Errorf("%q seen %d of %d times: %w (events: %v)", e, seen, n, ctx.Err(), w.list())
		}
	}
}

// echo is the peer: a loopback server that echoes what each connection sends.
type echo struct {
	ln    net.Listener
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func echoServer() (*echo, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e := &echo{ln: ln, conns: map[net.Conn]struct{}{}}
	e.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.mu.Lock()
			e.conns[c] = struct{}{}
			e.mu.Unlock()
			e.wg.Go(func() {
				_, _ = io.Copy(c, c)
				c.Close()
			})
		}
	})
	return e, nil
}

func (e *echo) Addr() net.Addr { return e.ln.Addr() }

// Close stops the server and waits for its goroutines.
func (e *echo) Close() {
	e.ln.Close()
	e.mu.Lock()
	for c := range e.conns {
		c.Close()
	}
	e.mu.Unlock()
	e.wg.Wait()
}
