package auth

import "github.com/securestreams/ss/auth"

// The values applications see are package auth's (the public one); these
// names let the machinery here use them unqualified.
type (
	Token          = auth.Token
	Device         = auth.Device
	LWACredentials = auth.LWACredentials
	OAuthError     = auth.OAuthError
	RefreshError   = auth.RefreshError
	Tuning         = auth.Tuning
)

// Slots is the number of slots of each kind.
const Slots = auth.Slots

var (
	errClosed        = auth.ErrClosed
	errSlot          = auth.ErrSlot
	errNoCredentials = auth.ErrNoCredentials
	errBadResponse   = auth.ErrBadResponse
	errKey           = auth.ErrKey
	errSigV4         = auth.ErrSigV4
)

// The runtime's store and refreshers are what package auth's interfaces
// describe.
var (
	_ auth.Store     = (*Store)(nil)
	_ auth.Refresher = (*Refresher)(nil)
)
