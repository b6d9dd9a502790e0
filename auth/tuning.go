package auth

import "time"

// Tuning adjusts a Refresher's timing; the zero value gives the defaults.
type Tuning struct {
	// RefreshAt is the fraction of a token's lifetime after which it is
	// refreshed (default 0.9).
	RefreshAt float64
	// Timeout bounds one refresh (default 30 s).
	Timeout time.Duration
	// MinBackoff and MaxBackoff bound the delay before retrying a failed
	// refresh; it doubles from MinBackoff (default 1 s) up to MaxBackoff
	// (default 5 min).
	MinBackoff, MaxBackoff time.Duration
	// MinInterval is the shortest time between a successful refresh and
	// the next scheduled one (default 1 s), so a token with a tiny lifetime
	// cannot make the refresher spin.
	MinInterval time.Duration
}
