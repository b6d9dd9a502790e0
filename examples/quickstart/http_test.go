package main

import (
	"context"
	"testing"
	"time"
)

func TestHTTP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := httpServe(ctx); err != nil {
		t.Fatal(err)
	}
}
