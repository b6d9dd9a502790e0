package bufpool

import (
	"testing"

	"github.com/securestreams/ss/internal/testutil"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, testutil.GoleakOptions()...) }

func TestGetSizes(t *testing.T) {
	for _, tc := range []struct{ n, cap int }{
		{0, 0}, {1, 1}, {4095, 4095}, {4096, 4096}, {4097, 8192}, {16 << 10, 16 << 10},
		{(16 << 10) + 1, 32 << 10}, {1 << 20, 1 << 20}, {(1 << 20) + 1, (1 << 20) + 1},
	} {
		b := Get(tc.n)
		if len(b) != tc.n || cap(b) != tc.cap {
			t.Errorf("Get(%d): len %d cap %d, want len %d cap %d", tc.n, len(b), cap(b), tc.n, tc.cap)
		}
	}
}

func TestPutReuses(t *testing.T) {
	// sync.Pool may drop entries (GC, another P), so look for reuse over
	// many rounds rather than once.
	reused := false
	for range 100 {
		b := Get(5000)
		b[0] = 42
		p := &b[:cap(b)][cap(b)-1]
		Put(b)
		c := Get(6000)
		if &c[:cap(c)][cap(c)-1] == p {
			reused = true
			if cap(c) != 8192 || len(c) != 6000 {
				t.Fatalf("reused buffer: len %d cap %d", len(c), cap(c))
			}
			break
		}
	}
	if !reused {
		t.Fatal("a buffer Put back was never handed out again")
	}
}

func TestPutIgnoresOddCapacities(t *testing.T) {
	// A buffer whose capacity is not a class size must never come back
	// from Get with a class capacity larger than its storage.
	for _, n := range []int{100, 4095, 5000, 3 << 20} {
		Put(make([]byte, n))
	}
	for range 50 {
		b := Get(4096)
		if cap(b) != 4096 {
			t.Fatalf("cap %d", cap(b))
		}
		b = b[:cap(b)]
		b[len(b)-1] = 1 // would fault or corrupt on a short buffer under -race/checkptr
	}
}
