package main

import (
	"context"
	"testing"
	"time"
)

func TestHTTPClients(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := httpClients(ctx); err != nil {
		t.Fatal(err)
	}
}
