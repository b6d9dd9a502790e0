package stream

import (
	"strings"
	"testing"

	"github.com/securestreams/ss/internal/event"
)

// specTable is docs/streams.md §3.1 as written (lws rows plus the Go additions),
// parsed independently of legalNext.
const specTable = `
none | CREATING, DESTROYING
CREATING | CONNECTING, TIMEOUT, POLL, SERVER_UPGRADE, DESTROYING
DISCONNECTED | CONNECTING, CONNECTED, TIMEOUT, POLL, DESTROYING, UNREACHABLE, ALL_RETRIES_FAILED
UNREACHABLE | ALL_RETRIES_FAILED, TIMEOUT, POLL, UNREACHABLE, CONNECTING, CONNECTED, DESTROYING
AUTH_FAILED | ALL_RETRIES_FAILED, TIMEOUT, CONNECTING, DESTROYING
CONNECTED | SERVER_UPGRADE, SERVER_TXN, AUTH_FAILED, QOS_ACK_REMOTE, QOS_NACK_REMOTE, QOS_ACK_LOCAL, QOS_NACK_LOCAL, DISCONNECTED, TIMEOUT, CONNECTING, POLL, DESTROYING
CONNECTING | UNREACHABLE, AUTH_FAILED, CONNECTING, CONNECTED, QOS_ACK_REMOTE, QOS_NACK_REMOTE, TIMEOUT, POLL, ALL_RETRIES_FAILED, DISCONNECTED, DESTROYING
DESTROYING |
POLL | CONNECTING, TIMEOUT, ALL_RETRIES_FAILED, DESTROYING
ALL_RETRIES_FAILED | CONNECTING, POLL, TIMEOUT, UNREACHABLE, DESTROYING
QOS_ACK_REMOTE | DISCONNECTED, TIMEOUT, CONNECTING, QOS_ACK_REMOTE, QOS_NACK_REMOTE, DESTROYING, QOS_NACK_LOCAL
QOS_NACK_REMOTE | DISCONNECTED, TIMEOUT, QOS_ACK_REMOTE, QOS_NACK_REMOTE, DESTROYING, QOS_NACK_LOCAL
QOS_ACK_LOCAL | DISCONNECTED, TIMEOUT, DESTROYING, QOS_ACK_LOCAL, QOS_NACK_LOCAL, QOS_ACK_REMOTE, QOS_NACK_REMOTE
QOS_NACK_LOCAL | DESTROYING, TIMEOUT, QOS_ACK_LOCAL, QOS_NACK_LOCAL, QOS_ACK_REMOTE, QOS_NACK_REMOTE, DISCONNECTED
TIMEOUT | CONNECTING, CONNECTED, QOS_ACK_REMOTE, QOS_NACK_REMOTE, POLL, TIMEOUT, DISCONNECTED, UNREACHABLE, DESTROYING, QOS_ACK_LOCAL, QOS_NACK_LOCAL, SERVER_TXN, SERVER_UPGRADE
SERVER_TXN | DISCONNECTED, TIMEOUT, SERVER_TXN, DESTROYING
SERVER_UPGRADE | SERVER_UPGRADE, SERVER_TXN, TIMEOUT, DISCONNECTED, DESTROYING
`

func stateByName(t *testing.T, name string) event.State {
	if name == "none" {
		return 0
	}
	for s := event.Creating; s <= event.SinkPart; s++ {
		if s.String() == name {
			return s
		}
	}
	t.Fatalf("unknown state %q", name)
	return 0
}

// TestLegalTable checks every (from, to) pair of checked states against the
// spec's table: allowed exactly when listed.
func TestLegalTable(t *testing.T) {
	allowed := map[[2]event.State]bool{}
	var froms []event.State
	for _, line := range strings.Split(strings.TrimSpace(specTable), "\n") {
		from, tos, _ := strings.Cut(line, "|")
		f := stateByName(t, strings.TrimSpace(from))
		froms = append(froms, f)
		for _, to := range strings.Split(tos, ",") {
			if to = strings.TrimSpace(to); to != "" {
				allowed[[2]event.State{f, stateByName(t, to)}] = true
			}
		}
	}
	if len(froms) != 17 {
		t.Fatalf("parsed %d rows", len(froms))
	}
	checked := []event.State{}
	for s := event.Creating; s <= event.SinkPart; s++ {
		if Checked(s) {
			checked = append(checked, s)
		}
	}
	if len(checked) != 16 {
		t.Fatalf("%d checked states, want 16", len(checked))
	}
	for _, f := range froms {
		for _, to := range checked {
			if got, want := Legal(f, to), allowed[[2]event.State{f, to}]; got != want {
				t.Errorf("Legal(%v, %v) = %v, want %v", f, to, got, want)
			}
		}
	}
}

func TestUncheckedStates(t *testing.T) {
	for _, s := range []event.State{event.EventWaitCancelled, event.UpstreamLinkRetry, event.SinkJoin, event.SinkPart, 1000, 1530, 65535} {
		if Checked(s) {
			t.Errorf("Checked(%v) = true", s)
		}
		if !Legal(event.Destroying, s) || !Legal(0, s) {
			t.Errorf("unchecked %v not always legal", s)
		}
	}
	if Legal(event.Creating, 21) || Legal(event.Creating, 999) {
		t.Error("unknown states below 1000 must be illegal")
	}
}
