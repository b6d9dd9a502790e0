//go:build !race

package testutil

// RaceEnabled reports whether the race detector is compiled in. Under it
// sync.Pool drops a share of what is put back on purpose, so tests that
// count allocations of pooled buffers allow for it.
const RaceEnabled = false
