package shm

import (
	"testing"
	"time"

	"github.com/bcship/bcship/transport/internal/transporttest"
	"github.com/bcship/bcship/wire"
)

// spinPair is two shm transports, node 2 echoing, with busy polling or
// not, connected over shared memory after one round trip; stop closes
// node 1.
func spinPair(t *testing.T, busy bool) (round func(id uint64), stop func()) {
	t.Helper()
	got := make(waiter, 16)
	a := echoPair(t, got, busy)
	round = func(id uint64) {
		if err := a.Send(2, wire.Header{}, seqAM(id, 56)); err != nil {
			t.Fatal(err)
		}
		select {
		case <-got:
		case <-time.After(5 * time.Second):
			t.Fatalf("no echo of %d", id)
		}
	}
	round(1)
	deadline := time.Now().Add(10 * time.Second)
	for !a.onShm(2) {
		if time.Now().After(deadline) {
			t.Fatal("no shared-memory connection after 10 s")
		}
		time.Sleep(time.Millisecond)
	}
	round(2)
	return round, func() { a.Close() }
}

// TestIdleBusyDoesNotSpin: busy-polling shm transports spin while traffic
// flows, not while they are idle or see a message now and then: their CPU
// time then stays near that of default ones measured in the same run.
func TestIdleBusyDoesNotSpin(t *testing.T) {
	def, busy, wall := transporttest.SpacedRoundsCPU(t, 40, 10*time.Millisecond, func(busy bool) (func(uint64), func()) {
		return spinPair(t, busy)
	})
	if busy > 3*def+wall/10 {
		t.Errorf("busy shm transports with a message every 10 ms used %v of CPU in %v (default ones %v): the loops spin while idle", busy, wall, def)
	}
}
