package stream

// msgRestart: the actor's supervisor restarted it (docs/supervision.md).
type msgRestart struct{}

// onRestart makes a supervisor's restart a reconnect: the running attempt
// or connection ends (DISCONNECTED if it was connected) and a new attempt
// starts with the retry counter reset, as Disconnect then Connect would. An
// accepted server stream cannot reconnect: it is destroyed. (A supervisor
// stopping the actor destroys any stream: see the Stopped case in Receive.)
func (s *Stream) onRestart() {
	if s.conn != nil || s.st.Server {
		s.onDestroy()
		return
	}
	s.onDisconnect()
	s.onConnect()
}
