package bcship

import (
	"context"
	"testing"
	"time"

	"github.com/bcship/bcship/bundle"
	"github.com/bcship/bcship/internal/chase"
	"github.com/bcship/bcship/kernels"
	"github.com/bcship/bcship/loader"
	"github.com/bcship/bcship/toolchain"
)

// TestActiveMessage runs the chase as a predeployed handler: the same walk,
// nothing shipped.
func TestActiveMessage(t *testing.T) {
	nodes := cluster(t, []uint32{1, 2, 3, 100}, func(c *Config) { c.DefaultTTL = 255 })
	l := chase.New([]uint32{1, 2, 3}, 300, 8)
	registerList(t, nodes, l)
	for _, id := range []uint32{1, 2, 3} {
		if err := nodes[id].RegisterAM("chase", chaseCode(t), "chase"); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	links := 100
	res, err := nodes[100].CallAM(ctx, uint32(l.Head>>32), "chase", chase.Walk{Key: l.Head, Remaining: uint64(links)}.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	got, err := chase.Parse(res.Reply())
	if err != nil {
		t.Fatal(err)
	}
	if want := l.Expect(links); got != want {
		t.Fatalf("AM chase = %+v, want %+v", got, want)
	}
	if s := nodes[100].Stats(); s.Ships != 0 {
		t.Errorf("an AM shipped code: %+v", s)
	}
	_, err = nodes[100].CallAM(ctx, 1, "nosuch", nil)
	wantRemote(t, err, ErrNoHandler, 15, 1)
}

// TestCacheEviction: with room for one image, a second code evicts the
// first; invoking the first again fetches it from the origin by NEED_CODE.
func TestCacheEviction(t *testing.T) {
	nodes := cluster(t, []uint32{1, 2}, func(c *Config) { c.CacheBytes = 1 })
	l := chase.New([]uint32{2}, 50, 2)
	registerList(t, nodes, l)
	a := chaseCode(t)
	obj, err := kernels.Object("chase", loader.HostMachine())
	if err != nil {
		t.Fatal(err)
	}
	triple, _ := toolchain.HostTriple()
	b := bundle.New("chase-b", []string{"chase"}, 0)
	b.AddObject(triple, obj)
	if a.Hash() == b.Hash() {
		t.Fatal("the two codes have one hash")
	}
	ctx := context.Background()
	walk(t, ctx, nodes[1], a, l, 10)
	walk(t, ctx, nodes[1], b, l, 10)
	s := nodes[2].Stats()
	if s.CacheEntries != 1 || s.Evictions != 1 {
		t.Fatalf("cache: %d entries, %d evictions", s.CacheEntries, s.Evictions)
	}
	needs := s.NeedCode
	walk(t, ctx, nodes[1], a, l, 10) // the origin thinks node 2 has it
	if s := nodes[2].Stats(); s.NeedCode != needs+1 {
		t.Fatalf("re-running evicted code sent %d NEED_CODE, want 1", s.NeedCode-needs)
	}
}
