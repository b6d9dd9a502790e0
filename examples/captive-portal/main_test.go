package main

import (
	"context"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/securestreams/ss/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.GoleakOptions()...)
}

// TestOverlays runs the example as its doc comment does, once per flag.
func TestOverlays(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "network: InternetOK\napp: hello from the internet\n"},
		{[]string{"-force-portal"}, "network: CaptivePortal\napp: held until the network is InternetOK\n"},
		{[]string{"-force-no-internet"}, "network: NoInternet\napp: held until the network is InternetOK\n"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var out strings.Builder
			if err := run(context.Background(), c.args, &out); err != nil {
				t.Fatal(err)
			}
			if out.String() != c.want {
				t.Fatalf("output:\n%s\nwant:\n%s", out.String(), c.want)
			}
		})
	}
}
