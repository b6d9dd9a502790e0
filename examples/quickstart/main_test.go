package main

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/securestreams/ss/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.GoleakOptions()...)
}

func TestRawTLS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rawTLS(ctx); err != nil {
		t.Fatal(err)
	}
}
