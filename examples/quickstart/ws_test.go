package main

import (
	"context"
	"testing"
	"time"
)

func TestWebSocket(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := wsEcho(ctx); err != nil {
		t.Fatal(err)
	}
}
