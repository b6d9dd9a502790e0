package stream

import (
	"runtime/debug"

	"github.com/securestreams/ss/actor"
)

// A stream created with Config.OwnMailbox has no protoactor actor: its
// messages go to a mailbox of its own (Stream.early, under s.mu), run one
// at a time by whichever goroutine sent one while none was running, exactly
// as the synchronized dispatcher of PropsInline runs an inline actor's
// mailbox (docs/supervision.md). It costs no actor (about 1.1 KB of heap:
// props, mailbox ring, process registry entry, actor context) for the
// stream's whole life, which is what an SS proxy's onward stream needs:
// nobody supervises it but its link (PERFORMANCE.md, "Memory per proxied
// stream"). Its lifecycle is the actor's: the first message (or New, for a
// stream with something to do at once) starts it as Started would, and
// finish ends it as Stopped would. Lazy streams stay lazy: the mailbox
// starts with the first message that needs the actor (tell).

// post sends msg to the stream's lifecycle owner: its own mailbox, or the
// actor pid (nil: the actor is not there yet, tell keeps it).
func (s *Stream) post(pid *actor.PID, msg any) {
	if s.own || pid == nil {
		s.tell(msg)
		return
	}
	s.h.Actors.Tell(pid, msg)
}

// tellOwn queues msg in the own mailbox (s.mu held, released here) and runs
// the mailbox when no other goroutine does.
func (s *Stream) tellOwn(msg any) {
	if !s.spawning && s.ended {
		s.mu.Unlock()
		return // ended before it ever needed its lifecycle
	}
	if !s.spawning {
		switch msg.(type) {
		case msgDisconnect, msgCancelTimeout:
			s.mu.Unlock()
			return // nothing to undo on a stream that never started
		}
	}
	s.early = append(s.early, msg)
	if s.running {
		s.mu.Unlock()
		return
	}
	s.running = true
	s.spawning = true
	s.mu.Unlock()
	s.runOwn()
}

// startOwn starts an own-mailbox stream at once (New: nailed_up and
// accepted streams).
func (s *Stream) startOwn() {
	s.mu.Lock()
	s.running = true
	s.spawning = true
	s.mu.Unlock()
	s.runOwn()
}

// runOwn runs the own mailbox until it is empty; only the goroutine that
// set s.running calls it.
func (s *Stream) runOwn() {
	if s.a == nil {
		s.a = &actorState{}
		s.mu.Lock()
		ended := s.ended
		s.mu.Unlock()
		if ended {
			s.a.phase = ending
		} else {
			s.watchGates()
			s.started()
		}
	}
	for {
		s.mu.Lock()
		if len(s.early) == 0 {
			s.early = nil // an idle stream holds no mailbox array
			s.running = false
			s.mu.Unlock()
			return
		}
		msg := s.early[0]
		s.early[0] = nil
		s.early = s.early[1:]
		s.mu.Unlock()
		s.handleOwn(msg)
	}
}

// handleOwn handles one message; a panic is logged and turns into a
// restart (a reconnect), as protoactor's default supervision of an actor
// does (docs/supervision.md).
func (s *Stream) handleOwn(msg any) {
	defer func() {
		if r := recover(); r != nil {
			s.h.Logger.Error("ss: stream panicked; reconnecting", "stream", s.id, "streamtype", s.st.Name,
				"panic", r, "stack", string(debug.Stack()))
			s.handle(msgRestart{})
		}
	}()
	if testHookOwnHandle != nil {
		testHookOwnHandle(msg)
	}
	s.handle(msg)
}

// testHookOwnHandle, when a test sets it, sees every message an own
// mailbox runs, before it is handled.
var testHookOwnHandle func(msg any)
