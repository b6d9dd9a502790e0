package event

import "testing"

func TestStateStrings(t *testing.T) {
	want := map[State]string{
		Creating: "CREATING", Disconnected: "DISCONNECTED", Unreachable: "UNREACHABLE", AuthFailed: "AUTH_FAILED",
		Connected: "CONNECTED", Connecting: "CONNECTING", Destroying: "DESTROYING", Poll: "POLL",
		AllRetriesFailed: "ALL_RETRIES_FAILED", QoSAckRemote: "QOS_ACK_REMOTE", QoSNackRemote: "QOS_NACK_REMOTE",
		QoSAckLocal: "QOS_ACK_LOCAL", QoSNackLocal: "QOS_NACK_LOCAL", Timeout: "TIMEOUT", ServerTxn: "SERVER_TXN",
		ServerUpgrade: "SERVER_UPGRADE", EventWaitCancelled: "EVENT_WAIT_CANCELLED", UpstreamLinkRetry: "UPSTREAM_LINK_RETRY",
		SinkJoin: "SINK_JOIN", SinkPart: "SINK_PART", 1530: "USER(1530)", 0: "STATE(0)", 21: "STATE(21)",
	}
	for s, w := range want {
		if got := s.String(); got != w {
			t.Errorf("State(%d).String() = %q, want %q", uint32(s), got, w)
		}
	}
	// The numbers cross the wire: they must never change.
	nums := []State{Creating, Disconnected, Unreachable, AuthFailed, Connected, Connecting, Destroying, Poll,
		AllRetriesFailed, QoSAckRemote, QoSNackRemote, QoSAckLocal, QoSNackLocal, Timeout, ServerTxn, ServerUpgrade,
		EventWaitCancelled, UpstreamLinkRetry, SinkJoin, SinkPart}
	for i, s := range nums {
		if uint32(s) != uint32(i+1) {
			t.Errorf("%v = %d, want %d", s, uint32(s), i+1)
		}
	}
	if !State(1000).IsUser() || State(999).IsUser() {
		t.Error("IsUser boundary wrong")
	}
}

func TestFlags(t *testing.T) {
	if SOM != 1 || EOM != 2 || PollFlag != 4 || RelatedStart != 8 || RelatedEnd != 0x10 || RideshareFlag != 0x20 || PerfJSON != 0x40 {
		t.Fatal("flag values differ from libwebsockets")
	}
	for f, w := range map[Flags]string{0: "0", SOM | EOM: "SOM|EOM", SOM | EOM | PerfJSON: "SOM|EOM|PERF_JSON", 0x100: "0x100", EOM | 0x80: "EOM|0x80"} {
		if got := f.String(); got != w {
			t.Errorf("Flags(%#x).String() = %q, want %q", uint32(f), got, w)
		}
	}
}

func TestEventString(t *testing.T) {
	for e, w := range map[string]Event{
		"CONNECTED":             {Kind: StateEvent, State: Connected},
		"QOS_ACK_REMOTE(ack=2)": {Kind: StateEvent, State: QoSAckRemote, Ack: 2},
		"rx(SOM|EOM, 5 bytes)":  {Kind: PayloadEvent, Payload: []byte("hello"), Flags: SOM | EOM},
	} {
		if got := w.String(); got != e {
			t.Errorf("String() = %q, want %q", got, e)
		}
	}
	if StateEvent.String() != "state" || PayloadEvent.String() != "payload" || Kind(9).String() != "kind(9)" {
		t.Error("Kind strings")
	}
}
