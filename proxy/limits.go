package proxy

import (
	"errors"
	"fmt"
	"time"
)

// Defaults of ServerLimits (docs/proxy.md, SECURITY.md).
const (
	DefaultMaxLinks           = 4096
	DefaultMaxLinksPerUID     = 2048
	DefaultMaxLinksPerProcess = 1024
	DefaultMaxMetadata        = 64
	DefaultMaxMetadataBytes   = 64 << 10
	DefaultControlRate        = 100
	DefaultControlBurst       = 20
	DefaultMaxQueuedBytes     = DefaultMaxLinks * (128 << 10)
	DefaultFrameTimeout       = 30 * time.Second
)

// ServerLimits bound what proxy clients, which are not trusted, can make a
// Server hold or do. The zero value gives the defaults; a negative value
// switches that limit off (AllowUIDs and AllowGIDs are off when empty).
type ServerLimits struct {
	// MaxLinks bounds the open links, those still waiting for STREAMTYPE
	// included (default 4096). A connection over it gets CREATE_RESULT
	// failed and is closed.
	MaxLinks int
	// MaxLinksPerUID bounds the open links of one peer user id (unix
	// sockets, from SO_PEERCRED) or one remote IP address (TCP); default
	// 2048.
	MaxLinksPerUID int
	// MaxLinksPerProcess bounds the open links of one peer process id
	// (unix sockets); default 1024 (one process may run 1000 proxied
	// streams).
	MaxLinksPerProcess int
	// MaxMetadata bounds the distinct metadata names a client sets on its
	// stream (default 64); one more closes the link.
	MaxMetadata int
	// MaxMetadataBytes bounds the bytes of metadata names and values a
	// client's stream holds at once (default 64 KiB), and so the size of
	// one value; more closes the link.
	MaxMetadataBytes int
	// ControlRate is how many control operations per second a link may
	// apply to its onward stream (default 100), with bursts of
	// ControlBurst (default 20). Control frames (ONWARD_CONNECT,
	// TIMEOUT_UPDATE, PAYLOAD_LENGTH_HINT) beyond the rate are coalesced,
	// not queued: the link keeps one pending connect request, the latest
	// timeout and the latest length hint, applied when the rate allows, so
	// a flood costs a few bytes per link whatever its size. An empty
	// TX_PAYLOAD that carries flags costs one operation too (the link
	// waits for it, without reading); one without flags is dropped.
	ControlRate  float64
	ControlBurst int
	// MaxQueuedBytes bounds the sum over all links of the bytes each may
	// queue (its streamtype's proxy_buflen towards the onward peer plus
	// proxy_buflen_rxflow_on_above towards the client); default 512 MiB:
	// DefaultMaxLinks links of up to 128 KiB each (proxy_buflen and
	// rxflow_on_above of 64 KiB), so that with such streamtypes MaxLinks,
	// not this, is the limit reached first. It is a reservation, not
	// memory held: a link holds only what is actually queued. A link that
	// would take the sum over it is refused with CREATE_RESULT failed.
	MaxQueuedBytes int64
	// FrameTimeout bounds the time a frame may take to arrive once its
	// first bytes have (default 30 s): a slower frame closes the link
	// (slowloris). Time the proxy itself spends not reading (back-pressure)
	// does not count.
	FrameTimeout time.Duration
	// AllowUIDs and AllowGIDs, when either is non-empty, admit only unix
	// socket peers whose user id is in AllowUIDs or whose group id is in
	// AllowGIDs; other peers, and every TCP peer (TCP has no
	// credentials), get CREATE_RESULT failed.
	AllowUIDs, AllowGIDs []uint32
}

// ErrLimits: a ServerLimits value is invalid.
var ErrLimits = errors.New("ss: proxy: bad limits")

// Check reports an invalid combination (a burst below 1 with a rate
// set, for instance).

// Check reports limits that cannot work together.
func (lim ServerLimits) Check() error {
	rate := lim.ControlRate
	if rate == 0 {
		rate = DefaultControlRate
	}
	burst := lim.ControlBurst
	if burst == 0 {
		burst = DefaultControlBurst
	}
	if rate > 0 && burst < 1 {
		return fmt.Errorf("%w: ControlBurst %d: must be at least 1 when ControlRate is set", ErrLimits, lim.ControlBurst)
	}
	return nil
}
