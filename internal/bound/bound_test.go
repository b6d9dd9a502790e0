package bound

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/securestreams/ss/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.GoleakOptions()...)
}

func TestBound(t *testing.T) {
	b := New(2)
	if !b.TryTake() || !b.TryTake() || b.TryTake() {
		t.Fatal("TryTake does not stop at the bound")
	}
	if b.Len() != 2 || b.Cap() != 2 {
		t.Fatalf("Len %d Cap %d", b.Len(), b.Cap())
	}
	done := make(chan struct{})
	close(done)
	if b.Take(done) || b.Wait(done) {
		t.Fatal("Take/Wait on a full bound returned true with done closed")
	}
	took := make(chan bool)
	go func() { took <- b.Take(nil) }()
	select {
	case <-took:
		t.Fatal("Take did not wait for a slot")
	case <-time.After(20 * time.Millisecond):
	}
	b.Give()
	if !<-took {
		t.Fatal("Take failed after Give")
	}
	if b.Len() != 2 {
		t.Fatalf("Len %d after Give and Take", b.Len())
	}
	b.Give()
	if !b.Wait(nil) || b.Len() != 1 {
		t.Fatal("Wait with a free slot")
	}
}
