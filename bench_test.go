package bcship

import (
	"context"
	"testing"

	"github.com/bcship/bcship/internal/chase"
)

// BenchmarkInvoke is a cached invocation round trip between two loopback
// nodes, next to the same kernel as an active message.
func BenchmarkInvoke(b *testing.B) {
	nodes := cluster(b, []uint32{1, 2}, nil)
	l := chase.New([]uint32{2}, 16, 1)
	nodes[2].RegisterRegion("chase", l.Regions[2])
	code := chaseCode(b)
	nodes[2].RegisterAM("chase", code, "chase")
	arg := chase.Walk{Key: l.Head}.Bytes()
	ctx := context.Background()
	b.Run("invoke", func(b *testing.B) {
		for b.Loop() {
			if _, err := nodes[1].Invoke(ctx, 2, code, "chase", arg); err != nil {
				b.Fatal(err)
			}
		}
	})
	h, _ := nodes[1].AddCode(code)
	b.Run("invokehash", func(b *testing.B) {
		for b.Loop() {
			if _, err := nodes[1].InvokeHash(ctx, 2, h, "chase", arg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("am", func(b *testing.B) {
		for b.Loop() {
			if _, err := nodes[1].CallAM(ctx, 2, "chase", arg); err != nil {
				b.Fatal(err)
			}
		}
	})
}
