package auth

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Updates are applied in order, readers see them once Set returns, and
// watchers hear about each after it is published.
func TestStoreUpdatesAndWatch(t *testing.T) {
	s := newStore(t)
	seen := make(chan Change, 16)
	stop := s.Watch(func(ch Change) {
		if ch.Kind == KindToken && string(s.Token(ch.Slot).Value) == "" {
			t.Error("watcher ran before the update was published")
		}
		seen <- ch
	})
	ctx := ctxT(t)
	if err := s.SetToken(ctx, 3, Token{Value: []byte("t3")}); err != nil {
		t.Fatal(err)
	}
	if got := string(s.Token(3).Value); got != "t3" {
		t.Fatalf("slot 3 = %q", got)
	}
	if err := s.SetDevice(ctx, Device{Serial: "sn"}); err != nil || s.Device().Serial != "sn" {
		t.Fatalf("device %v (%v)", s.Device(), err)
	}
	if ch := <-seen; ch != (Change{KindToken, 3}) {
		t.Fatalf("first change %v", ch)
	}
	if ch := <-seen; ch != (Change{KindDevice, 0}) {
		t.Fatalf("second change %v", ch)
	}
	stop()
	if err := s.SetToken(ctx, 4, Token{}); !errors.Is(err, errSlot) {
		t.Fatalf("slot 4: %v", err)
	}
	if s.Token(-1).Valid(time.Now()) || s.ClientCert(9) != nil {
		t.Fatal("out-of-range reads must be empty")
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.SetToken(ctx, 0, Token{Value: []byte("x")}); !errors.Is(err, errClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if got := string(s.Token(3).Value); got != "t3" {
		t.Fatalf("reads after Close: %q", got)
	}
}

func TestTokenValid(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		tok  Token
		want bool
	}{
		{Token{}, false},
		{Token{Value: []byte("x")}, true},
		{Token{Value: []byte("x"), Expiry: now.Add(time.Second)}, true},
		{Token{Value: []byte("x"), Expiry: now}, false},
	} {
		if got := c.tok.Valid(now); got != c.want {
			t.Errorf("%+v: %v", c.tok, got)
		}
	}
	if s := (LWACredentials{RefreshToken: "secret", ClientID: "c"}).String(); s != "LWACredentials{ClientID:c, RefreshToken:[redacted]}" {
		t.Fatal(s)
	}
}
