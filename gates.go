package ss

import (
	"github.com/securestreams/ss/internal/stream"
	"github.com/securestreams/ss/policy"
)

// gatesFor returns the attempt gates of a client stream of st (including
// the SS proxy's onward streams): the stream starts no connection attempt
// while one of them is closed (stream.Gate, docs/stream-states.md). Each
// part of the runtime that can hold attempts (auth, system streamtypes)
// adds its gate here in one line.
func (rt *Runtime) gatesFor(st *policy.Streamtype) []stream.Gate {
	var gates []stream.Gate
	if g := rt.networkGate(st); g != nil { // Config.HoldUntilOnline (network.go)
		gates = append(gates, g)
	}
	if g := rt.authGate(st); g != nil { // lwa/jwt token schemes (auth.go)
		gates = append(gates, g)
	}
	return gates
}
