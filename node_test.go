package bcship

import (
	"context"
	"testing"
	"time"

	"github.com/bcship/bcship/internal/chase"
)

// TestChaseThreeNodes ships the chase kernel, forwards it across three
// nodes, and checks that the second run sends a hash, not the code.
func TestChaseThreeNodes(t *testing.T) {
	// Node 100 is a client: it holds no data, so its traffic is only the
	// requests and the code.
	nodes := cluster(t, []uint32{1, 2, 3, 100}, func(c *Config) { c.DefaultTTL = 255 })
	l := chase.New([]uint32{1, 2, 3}, 300, 7)
	registerList(t, nodes, l)
	code := chaseCode(t)
	origin := nodes[100]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	s0 := origin.Stats()
	res := walk(t, ctx, origin, code, l, 200)
	s1 := origin.Stats()
	res2 := walk(t, ctx, origin, code, l, 200)
	s2 := origin.Stats()
	t.Logf("first run: %d hops in %v, origin sent %d bytes, %d ships; second: %v, %d bytes, %d ships",
		res.Hops, res.Elapsed, s1.Transport.BytesSent-s0.Transport.BytesSent, s1.Ships-s0.Ships,
		res2.Elapsed, s2.Transport.BytesSent-s1.Transport.BytesSent, s2.Ships-s1.Ships)
	if res.Hops < 50 {
		t.Errorf("only %d hops: the list is not spread", res.Hops)
	}
	if s1.ShipBytes == s0.ShipBytes {
		t.Errorf("first run shipped no code")
	}
	if s2.Ships != s1.Ships || s2.ShipBytes != s1.ShipBytes {
		t.Errorf("second run shipped code again: %d ships, %d bytes", s2.Ships-s1.Ships, s2.ShipBytes-s1.ShipBytes)
	}
	if sent := s2.Transport.BytesSent - s1.Transport.BytesSent; sent >= s1.ShipBytes-s0.ShipBytes {
		t.Errorf("second run sent %d bytes, not less than the code (%d bytes)", sent, s1.ShipBytes-s0.ShipBytes)
	}
	for _, id := range []uint32{1, 2, 3} {
		st := nodes[id].Stats()
		if st.Invocations == 0 {
			t.Errorf("node %d ran nothing", id)
		}
		if st.CacheEntries != 1 {
			t.Errorf("node %d caches %d images", id, st.CacheEntries)
		}
	}
}
