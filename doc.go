// Package ss is a Go implementation of libwebsockets' Secure Streams.
//
// Application code sees only payload and advisory connection states. Where a
// stream connects, with which TLS trust, over which protocol and how it
// retries is data: a JSON policy (package policy) keyed by streamtype name.
//
//	rt, err := ss.New(ctx, ss.Config{Policy: p})
//	defer rt.Close(ctx)
//	s, err := rt.Create(ctx, "mystream", ss.WithMetadata("region", "uk"))
//	go s.Send(ctx, []byte("hello"))
//	for ev := range s.Events() { // closed after DESTROYING
//		switch ev.Kind {
//		case ss.StateEvent:   // ev.State: ss.Connecting, ss.Connected, ...
//		case ss.PayloadEvent: // ev.Payload, ev.Flags
//		}
//	}
//
// Each stream has one ordered event channel: CREATING first, DESTROYING
// last, then the channel is closed. States are never dropped and payload is
// never dropped: when the application reads slowly the stream stops reading
// from the network (receive backpressure) and holds at most a bounded amount
// of received data. Every method is safe from any goroutine, including the
// one ranging over Events; every blocking method takes a context.
//
// The behaviour is specified in docs/streams.md (states, legal
// transitions, lifecycle, retry, validity, timeouts, metadata, server
// streams) and docs/policy.md.
package ss
