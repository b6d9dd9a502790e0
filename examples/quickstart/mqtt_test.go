package main

import (
	"context"
	"testing"
	"time"
)

func TestMQTT(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := mqttPubSub(ctx); err != nil {
		t.Fatal(err)
	}
}
