package main

import (
	"context"
	"fmt"
	"io"

	"github.com/securestreams/ss"
)

// cat drives one stream to its end.
type cat struct {
	o              *options
	s              *ss.Stream
	kind           streamKind
	stdout, stderr io.Writer
}

// loop sends data (or asks for a transaction), copies payload to stdout and
// returns the exit status when the stream is done.
func (c *cat) loop(ctx context.Context, data []byte) int {
	s := c.s
	sendErr := make(chan error, 1)
	go func() {
		switch {
		case data != nil:
			sendErr <- s.Send(ctx, data)
		case c.kind == kindHTTP || c.kind == kindUnknown:
			sendErr <- s.RequestTx()
		default:
			sendErr <- s.Connect()
		}
	}()
	status, done, received := -1, false, 0
	finish := func(code int) {
		if !done {
			status, done = code, true
			s.Destroy(context.WithoutCancel(ctx))
		}
	}
	events := s.Events()
	for {
		select {
		case err := <-sendErr:
			sendErr = nil
			if err != nil {
				fmt.Fprintf(c.stderr, "sscat: %v\n", err)
				finish(1)
			}
			continue
		case <-ctx.Done():
			if c.kind == kindHTTP || c.kind == kindUnknown && received == 0 {
				fmt.Fprintf(c.stderr, "sscat: %v\n", context.Cause(ctx))
				finish(1)
			} else {
				finish(0)
			}
			ctx = context.WithoutCancel(ctx)
			continue
		case ev, ok := <-events:
			if !ok {
				if status < 0 {
					status = 1
				}
				return status
			}
			c.event(ev, &received, finish)
		}
	}
}

// event handles one event.
func (c *cat) event(ev ss.Event, received *int, finish func(int)) {
	if ev.Kind == ss.PayloadEvent {
		c.stdout.Write(ev.Payload)
		if ev.Flags&ss.EOM != 0 || ev.Flags&(ss.SOM|ss.EOM) == 0 {
			*received++ // a whole message (raw: a chunk)
			if c.o.count > 0 && *received >= c.o.count && c.kind != kindHTTP {
				finish(0)
			}
		}
		return
	}
	failure := ev.State == ss.QoSNackRemote || ev.State == ss.QoSNackLocal || ev.State == ss.AllRetriesFailed
	if c.o.verbose || failure {
		if ev.Err != nil {
			fmt.Fprintf(c.stderr, "sscat: %v: %v\n", ev.State, ev.Err)
		} else if ev.Ack != 0 {
			fmt.Fprintf(c.stderr, "sscat: %v (message %d)\n", ev.State, ev.Ack)
		} else {
			fmt.Fprintf(c.stderr, "sscat: %v\n", ev.State)
		}
	}
	switch ev.State {
	case ss.QoSAckRemote, ss.QoSAckLocal:
		if c.kind == kindHTTP || c.kind == kindPublishOnly || c.kind == kindUnknown && ev.State == ss.QoSAckRemote {
			finish(0)
		}
	case ss.QoSNackRemote, ss.QoSNackLocal, ss.AllRetriesFailed:
		finish(1)
	case ss.Disconnected:
		if c.kind == kindLong || c.kind == kindUnknown {
			finish(0)
		}
	}
}
