package proxy

import (
	"net"
	"time"

	pub "github.com/securestreams/ss/proxy"
)

// The public proxy package (proxy/) holds what users of the module see:
// addresses, limits and the causes a proxied stream reports. These names let
// the implementation here use them unqualified.
type (
	ServerLimits  = pub.ServerLimits
	ReportedError = pub.ReportedError
)

const (
	DefaultAddress            = pub.DefaultAddress
	DefaultMaxLinks           = pub.DefaultMaxLinks
	DefaultMaxLinksPerUID     = pub.DefaultMaxLinksPerUID
	DefaultMaxLinksPerProcess = pub.DefaultMaxLinksPerProcess
	DefaultMaxMetadata        = pub.DefaultMaxMetadata
	DefaultMaxMetadataBytes   = pub.DefaultMaxMetadataBytes
	DefaultControlRate        = pub.DefaultControlRate
	DefaultControlBurst       = pub.DefaultControlBurst
	DefaultMaxQueuedBytes     = pub.DefaultMaxQueuedBytes
	DefaultFrameTimeout       = pub.DefaultFrameTimeout
)

var (
	ErrAddress  = pub.ErrAddress
	ErrLimits   = pub.ErrLimits
	ErrLinkLost = pub.ErrLinkLost
	ErrReported = pub.ErrReported
)

// ParseAddress is proxy.ParseAddress.
func ParseAddress(s string) (network, addr string, err error) { return pub.ParseAddress(s) }

// effectiveLimits are the limits in force: 0 means no limit.
type effectiveLimits struct {
	maxLinks, perUID, perPID int
	maxMD, maxMDBytes        int
	controlRate              float64
	controlBurst             int
	maxQueued                int64
	frameTimeout             time.Duration
	allowUID, allowGID       map[uint32]bool
}

func pick[T int | int64 | float64 | time.Duration](v, def T) T {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

func effective(lim ServerLimits) effectiveLimits {
	e := effectiveLimits{
		maxLinks:     pick(lim.MaxLinks, DefaultMaxLinks),
		perUID:       pick(lim.MaxLinksPerUID, DefaultMaxLinksPerUID),
		perPID:       pick(lim.MaxLinksPerProcess, DefaultMaxLinksPerProcess),
		maxMD:        pick(lim.MaxMetadata, DefaultMaxMetadata),
		maxMDBytes:   pick(lim.MaxMetadataBytes, DefaultMaxMetadataBytes),
		controlRate:  pick(lim.ControlRate, DefaultControlRate),
		controlBurst: pick(lim.ControlBurst, DefaultControlBurst),
		maxQueued:    pick(lim.MaxQueuedBytes, DefaultMaxQueuedBytes),
		frameTimeout: pick(lim.FrameTimeout, DefaultFrameTimeout),
	}
	if len(lim.AllowUIDs)+len(lim.AllowGIDs) > 0 {
		e.allowUID, e.allowGID = map[uint32]bool{}, map[uint32]bool{}
		for _, u := range lim.AllowUIDs {
			e.allowUID[u] = true
		}
		for _, g := range lim.AllowGIDs {
			e.allowGID[g] = true
		}
	}
	return e
}

// Listen is proxy.Listen.
func Listen(address string) (net.Listener, error) { return pub.Listen(address) }
