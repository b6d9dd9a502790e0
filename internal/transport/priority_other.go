//go:build !linux

package transport

import (
	"errors"
	"fmt"
	"runtime"
)

// errNoPriority: SO_PRIORITY is Linux only; attr_priority is logged as not
// set elsewhere, like any other socket option that fails.
var errNoPriority = errors.New("SO_PRIORITY is not supported")

func setPriority(uintptr, int) error {
	return fmt.Errorf("%w on %s", errNoPriority, runtime.GOOS)
}
