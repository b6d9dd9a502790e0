// Package auth_test runs the auth package through the runtime: token
// schemes gating streams, LWA refreshed through a policy streamtype, JWT
// bearer headers, and the same through ssproxy.
package auth_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/securestreams/ss/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, testutil.GoleakOptions()...) }
