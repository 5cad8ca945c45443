package xrdma

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	bc "github.com/bcship/bcship"
	"github.com/bcship/bcship/internal/chase"
	"github.com/bcship/bcship/kernels"
	"github.com/bcship/bcship/loader"
)

// startCluster starts an in-process cluster of nodes data nodes with the
// three kernels installed as AM handlers.
func startCluster(t testing.TB, nodes int) (*Cluster, map[string]*Code) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := StartCluster(ctx, ClusterConfig{Nodes: nodes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	codes := map[string]*Code{}
	for _, name := range []string{"chase", "lookup", "gather"} {
		code, err := LoadCode(name, c.Key)
		if err != nil {
			t.Fatal(err)
		}
		if err := code.InstallAM(c.Targets()); err != nil {
			t.Fatal(err)
		}
		codes[name] = code
	}
	return c, codes
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// runAll runs queries 0…n-1 of op in every mode.
func runAll(ctx context.Context, t *testing.T, op Op, n int) {
	t.Helper()
	for i := range n {
		for _, m := range Modes {
			if err := op.Run(ctx, m, i); err != nil {
				t.Fatalf("%s query %d, %v: %v", op.Name(), i, m, err)
			}
		}
	}
}

// TestChaseModesAgree: GET, AM and shipped walks return the walk computed
// in Go, for several placements and lengths, including walks longer than
// one TTL's worth of forwards (segmented).
func TestChaseModesAgree(t *testing.T) {
	c, codes := startCluster(t, 3)
	ctx := testCtx(t)
	for _, seed := range []uint64{1, 2, 3} {
		for _, elems := range []int{1, 5, 300} {
			l, err := NewChaseList(c.IDs(), elems, seed)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Install(c.Targets()); err != nil {
				t.Fatal(err)
			}
			for _, links := range []int{1, 2, 17, 256, 257, 600} {
				t.Run(fmt.Sprintf("seed=%d/elems=%d/links=%d", seed, elems, links), func(t *testing.T) {
					ch, err := NewChase(c.Origin, codes["chase"], l, links)
					if err != nil {
						t.Fatal(err)
					}
					for _, m := range Modes {
						w, err := ch.Walk(ctx, m, nil)
						if err != nil {
							t.Fatalf("%v: %v", m, err)
						}
						if w != ch.Want() {
							t.Fatalf("%v walked %+v, want %+v", m, w, ch.Want())
						}
					}
				})
			}
		}
	}
}

// TestLookupModesAgree: present and absent keys, short and long chains.
func TestLookupModesAgree(t *testing.T) {
	c, codes := startCluster(t, 3)
	ctx := testCtx(t)
	for _, seed := range []uint64{1, 7} {
		for _, chain := range []int{1, 4, 40} {
			t.Run(fmt.Sprintf("seed=%d/chain=%d", seed, chain), func(t *testing.T) {
				tab, err := NewHashTable(3, 600, chain, seed)
				if err != nil {
					t.Fatal(err)
				}
				if err := tab.Install(c.Targets()); err != nil {
					t.Fatal(err)
				}
				keys := tab.Keys(24, seed)
				l, err := NewLookup(ctx, c.Origin, codes["lookup"], tab, keys)
				if err != nil {
					t.Fatal(err)
				}
				found := 0
				for _, k := range keys {
					found += int(tab.Expect(k).Found)
				}
				if found != 21 {
					t.Fatalf("%d of 24 keys present, want 21 (one in eight absent)", found)
				}
				runAll(ctx, t, l, len(keys))
			})
		}
	}
}

// TestGatherModesAgree: small and large sets, including one owner with
// more than MaxGather indices (split into two calls).
func TestGatherModesAgree(t *testing.T) {
	c, codes := startCluster(t, 3)
	ctx := testCtx(t)
	for _, seed := range []uint64{1, 9} {
		g, err := NewGatherData(c.IDs(), 500, seed)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Install(c.Targets()); err != nil {
			t.Fatal(err)
		}
		for _, count := range []int{1, 3, 64, 400} {
			t.Run(fmt.Sprintf("seed=%d/count=%d", seed, count), func(t *testing.T) {
				sets := [][]Ref{g.Refs(count, seed), g.Refs(count, seed+1)}
				ga, err := NewGather(c.Origin, codes["gather"], g, sets)
				if err != nil {
					t.Fatal(err)
				}
				runAll(ctx, t, ga, len(sets))
			})
		}
	}
	big := make([]Ref, MaxGather+10)
	for i := range big {
		big[i] = Ref{Node: 1, Index: uint64(i % 500)}
	}
	g, _ := NewGatherData(c.IDs(), 500, 5)
	if err := g.Install(c.Targets()); err != nil {
		t.Fatal(err)
	}
	ga, err := NewGather(c.Origin, codes["gather"], g, [][]Ref{big})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(ga.groups[0]); n != 2 {
		t.Fatalf("%d indices on one node made %d calls, want 2", len(big), n)
	}
	runAll(ctx, t, ga, 1)
}

// TestMismatchDetected: a run over data that changed under it is reported
// as a typed mismatch, not accepted.
func TestMismatchDetected(t *testing.T) {
	c, codes := startCluster(t, 2)
	ctx := testCtx(t)
	l, _ := NewChaseList(c.IDs(), 50, 1)
	if err := l.Install(c.Targets()); err != nil {
		t.Fatal(err)
	}
	ch, err := NewChase(c.Origin, codes["chase"], l, 40)
	if err != nil {
		t.Fatal(err)
	}
	ch.want.Sum++
	for _, m := range Modes {
		err := ch.Run(ctx, m, 0)
		var me *MismatchError
		if !errors.Is(err, ErrMismatch) || !errors.As(err, &me) || me.Mode != m {
			t.Fatalf("%v: got %v, want a *MismatchError", m, err)
		}
	}
}

// TestColdThenWarm: the first shipped run ships the code (SHIP bytes, and
// NEED_CODE from nodes a walk reaches later); the second ships nothing, and
// every node answers from its cache.
func TestColdThenWarm(t *testing.T) {
	c, codes := startCluster(t, 3)
	ctx := testCtx(t)
	l, _ := NewChaseList(c.IDs(), 300, 4)
	if err := l.Install(c.Targets()); err != nil {
		t.Fatal(err)
	}
	ch, err := NewChase(c.Origin, codes["chase"], l, 64)
	if err != nil {
		t.Fatal(err)
	}
	cold, err := codes["chase"].Cold(1)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := cold.Marshal()
	s0 := c.Stats()
	if err := ch.RunCold(ctx, cold, 0); err != nil {
		t.Fatal(err)
	}
	s1 := c.Stats()
	if err := ch.RunCold(ctx, cold, 0); err != nil {
		t.Fatal(err)
	}
	s2 := c.Stats()
	first, second := diff(s1, s0), diff(s2, s1)
	t.Logf("first run: %+v", first)
	t.Logf("second run: %+v", second)
	// A 64-link walk over 3 nodes visits every node (checked below by the
	// cache misses), so each node gets the code once: the first with the
	// INVOKE (installed before it runs), the other two answering the
	// NEED_CODE they send at a cache miss.
	if first.Ships != 3 || first.ShipBytes != 3*uint64(len(data)) || first.NeedCode != 2 || first.CacheMisses != 2 {
		t.Errorf("first run: %d SHIPs of %d bytes, %d NEED_CODE, %d misses; want 3 SHIPs of %d bytes each, 2 NEED_CODE, 2 misses",
			first.Ships, first.ShipBytes, first.NeedCode, first.CacheMisses, len(data))
	}
	if second.Ships != 0 || second.ShipBytes != 0 || second.NeedCode != 0 || second.CacheMisses != 0 {
		t.Errorf("second run shipped code: %d SHIPs, %d bytes, %d NEED_CODE, %d misses",
			second.Ships, second.ShipBytes, second.NeedCode, second.CacheMisses)
	}
	if second.Transport.BytesSent+uint64(len(data)) > first.Transport.BytesSent {
		t.Errorf("second run sent %d bytes, first %d: want at least the %d-byte bundle less",
			second.Transport.BytesSent, first.Transport.BytesSent, len(data))
	}
}

func diff(a, b bc.Stats) bc.Stats {
	var d bc.Stats
	d.Transport.BytesSent = a.Transport.BytesSent - b.Transport.BytesSent
	d.Ships, d.ShipBytes, d.NeedCode = a.Ships-b.Ships, a.ShipBytes-b.ShipBytes, a.NeedCode-b.NeedCode
	d.CacheHits, d.CacheMisses = a.CacheHits-b.CacheHits, a.CacheMisses-b.CacheMisses
	return d
}

// TestCycleStoppedByTTL: a walk of a cyclic list asked to go on forever,
// in one invocation, ends with ErrTTLExhausted rather than a hang.
func TestCycleStoppedByTTL(t *testing.T) {
	c, codes := startCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, _ := NewChaseList(c.IDs(), 30, 2)
	if err := l.Install(c.Targets()); err != nil {
		t.Fatal(err)
	}
	arg := chase.Walk{Key: l.Head(), Remaining: 1 << 40}.Bytes()
	for _, m := range []Mode{AM, Shipped} {
		var err error
		if m == AM {
			_, err = c.Origin.CallAM(ctx, owner(l.Head()), "chase", arg)
		} else {
			_, err = c.Origin.Invoke(ctx, owner(l.Head()), codes["chase"].Bundle, "chase", arg)
		}
		if !errors.Is(err, bc.ErrTTLExhausted) {
			t.Fatalf("%v: endless walk returned %v, want ErrTTLExhausted", m, err)
		}
	}
}

// TestPeerDownMidChase: a data node dies while walks run; the walk in
// flight fails with ErrPeerDown within a second, in every mode.
func TestPeerDownMidChase(t *testing.T) {
	for _, m := range Modes {
		t.Run(m.String(), func(t *testing.T) {
			c, codes := startCluster(t, 3)
			ctx := testCtx(t)
			l, _ := NewChaseList(c.IDs(), 300, 3)
			if err := l.Install(c.Targets()); err != nil {
				t.Fatal(err)
			}
			ch, err := NewChase(c.Origin, codes["chase"], l, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if err := ch.Run(ctx, m, 0); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				for {
					if err := ch.Run(ctx, m, 0); err != nil {
						done <- err
						return
					}
				}
			}()
			time.Sleep(30 * time.Millisecond)
			killed := time.Now()
			c.Data[2].Close()
			select {
			case err := <-done:
				if !errors.Is(err, bc.ErrPeerDown) {
					t.Fatalf("walk failed with %v, want ErrPeerDown", err)
				}
				t.Logf("%v after the node died: %v", time.Since(killed), err)
			case <-time.After(time.Second):
				t.Fatal("no error within 1 s of the node's death")
			}
		})
	}
}

// TestPrebuiltKernels: every prebuilt kernel exists for both
// architectures, exports its name as its entry, and imports nothing but
// the host runtime (bc_* helpers and the memory primitives).
func TestPrebuiltKernels(t *testing.T) {
	for _, name := range kernels.Names {
		for _, m := range machines {
			obj, err := kernels.Object(name, m)
			if err != nil {
				t.Fatal(err)
			}
			info, err := loader.Inspect(obj)
			if err != nil {
				t.Fatalf("%s %v: %v", name, m, err)
			}
			if !slices.Equal(info.Entries, []string{name}) {
				t.Errorf("%s %v: entries %q, want [%s]", name, m, info.Entries, name)
			}
			for _, u := range info.Undefined {
				if !strings.HasPrefix(u, "bc_") && !slices.Contains([]string{"memcpy", "memset", "memmove", "memcmp"}, u) {
					t.Errorf("%s %v imports %s", name, m, u)
				}
			}
		}
	}
}

// TestColdLongWalk: a cold walk longer than one segment runs the cold
// code throughout: every node that the walk reaches gets it, and only
// once.
func TestColdLongWalk(t *testing.T) {
	c, codes := startCluster(t, 3)
	ctx := testCtx(t)
	l, _ := NewChaseList(c.IDs(), 300, 5)
	if err := l.Install(c.Targets()); err != nil {
		t.Fatal(err)
	}
	ch, err := NewChase(c.Origin, codes["chase"], l, 700)
	if err != nil {
		t.Fatal(err)
	}
	cold, err := codes["chase"].NextCold(c.Origin)
	if err != nil {
		t.Fatal(err)
	}
	s0 := c.Stats()
	if err := ch.RunCold(ctx, cold, 0); err != nil {
		t.Fatal(err)
	}
	d := diff(c.Stats(), s0)
	if d.Ships != 3 || d.NeedCode+1 != d.Ships {
		t.Errorf("a 3-segment cold walk over 3 nodes: %d SHIPs, %d NEED_CODE; want 3 and 2", d.Ships, d.NeedCode)
	}
}
