package stream

import (
	"strings"

	"github.com/securestreams/ss/internal/transport"
)

// mdSlot is one declared metadata item of a stream. Its two halves have one
// writer each (docs/stream-states.md), both under Stream.mu:
//
//   - app, sets: what the application set, written only by SetMetadata
//     (Config.Metadata goes through it). Requests, ${name} substitution and
//     server responses use this value alone: a value received from the peer
//     is never sent back by itself.
//   - rx, over: what the peer sent (a captured response header, a server
//     request field), written only by the running attempt's transport
//     (sink.SetMetadata, sink.ClearMetadata). over is the sets count the
//     value was received at.
//
// Metadata returns the later of the two writes: rx while it is set and the
// application has not set the item since (over == sets), else app.
type mdSlot struct {
	app  transport.MetadataValue
	sets uint32
	rx   transport.MetadataValue
	over uint32
}

// value is the slot's current value (Stream.Metadata). s.mu is held.
func (m *mdSlot) value() transport.MetadataValue {
	if m.rx.Set && m.over == m.sets {
		return m.rx
	}
	return m.app
}

// SetMetadata sets a metadata value (docs/streams.md §9.2): a declared name, or on
// direct_proto_str streamtypes an undeclared name ending in ':' (a raw
// header sent with requests or responses). It writes only the
// application's half of the item (mdSlot).
func (s *Stream) SetMetadata(name, value string) error {
	i := s.st.MetadataIndex(name)
	if s.checkMD != nil {
		if err := s.checkMD(name, value); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return s.gone()
	}
	if i >= 0 {
		m := &s.md[i]
		m.app = transport.MetadataValue{Value: value, Set: true}
		m.sets++
		return nil
	}
	if s.st.DirectProtoStr && strings.HasSuffix(name, ":") && len(name) > 1 {
		x := s.headersLocked()
		if x.tx == nil {
			x.tx = map[string]string{}
		}
		x.tx[name] = value
		return nil
	}
	return &MetadataError{Name: name, Streamtype: s.st.Name}
}

// Metadata returns a metadata value and whether it is set: for a declared
// name the later of the application's value and the value received from
// the peer (mdSlot). Undeclared "name:" names on direct_proto_str
// streamtypes return the received header.
func (s *Stream) Metadata(name string) (string, bool, error) {
	i := s.st.MetadataIndex(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if i >= 0 {
		v := s.md[i].value()
		return v.Value, v.Set, nil
	}
	if s.st.DirectProtoStr && strings.HasSuffix(name, ":") {
		if s.extra == nil {
			return "", false, nil
		}
		v, ok := s.extra.rx[strings.ToLower(name)]
		return v, ok, nil
	}
	return "", false, &MetadataError{Name: name, Streamtype: s.st.Name}
}

// setReceived stores a value captured from the peer: the transport's half
// of a declared item, or a received "name:" header.
func (s *Stream) setReceived(name, value string) {
	i := s.st.MetadataIndex(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if i >= 0 {
		m := &s.md[i]
		m.rx = transport.MetadataValue{Value: value, Set: true}
		m.over = m.sets
		return
	}
	if strings.HasSuffix(name, ":") {
		x := s.headersLocked()
		if x.rx == nil {
			x.rx = map[string]string{}
		}
		x.rx[strings.ToLower(name)] = value
	}
}

// clearReceived forgets a received value (a declared name, whose value is
// then the application's again, unset when it set none; or a received
// "name:" header).
func (s *Stream) clearReceived(name string) {
	i := s.st.MetadataIndex(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if i >= 0 {
		s.md[i].rx = transport.MetadataValue{}
		return
	}
	if s.extra != nil {
		delete(s.extra.rx, strings.ToLower(name))
	}
}

// metadataSnapshot copies what the application set: the declared values
// in declaration order and the direct_proto_str headers (nil when none).
func (s *Stream) metadataSnapshot() ([]transport.MetadataValue, map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.metadataSnapshotLocked()
}

// metadataSnapshotLocked is metadataSnapshot with s.mu held.
func (s *Stream) metadataSnapshotLocked() ([]transport.MetadataValue, map[string]string) {
	var md []transport.MetadataValue
	if len(s.md) > 0 {
		md = make([]transport.MetadataValue, len(s.md))
		for i := range s.md {
			md[i] = s.md[i].app
		}
	}
	var extra map[string]string
	if s.extra != nil && len(s.extra.tx) > 0 {
		extra = make(map[string]string, len(s.extra.tx))
		for k, v := range s.extra.tx {
			extra[k] = v
		}
	}
	return md, extra
}

// extraHeaders are a direct_proto_str stream's "name:" headers, made by
// the first one (Stream.extra; most streams have none).
type extraHeaders struct {
	tx map[string]string // sent; written only by SetMetadata (the application)
	rx map[string]string // received; written only by the transport (setReceived, clearReceived)
}

// headersLocked returns the stream's extraHeaders, making them. s.mu is
// held.
func (s *Stream) headersLocked() *extraHeaders {
	if s.extra == nil {
		s.extra = &extraHeaders{}
	}
	return s.extra
}
