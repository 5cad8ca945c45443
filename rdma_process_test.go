package bcship

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/bcship/bcship/internal/chase"
	"github.com/bcship/bcship/transport/rdma"
)

// TestRdmaProcesses is TestProcesses over soft-RoCE: three nodes as
// separate processes on transport/rdma and an RDMA origin in the test.
// The code is shipped once and then invoked by hash, chases forward over
// RC queue pairs across all three, Get and Put from the origin are
// one-sided; then one process is killed with SIGKILL mid-chase and the
// origin must get ErrPeerDown, not hang, while the others keep serving.
func TestRdmaProcesses(t *testing.T) {
	dev := rdmaDevice(t)
	start := time.Now()
	ids := []uint32{1, 2, 3}
	// TCG: a hop costs ≈ 200 µs and four processes share two vCPUs, so
	// walks stay short.
	const elems, seed, links = 600, 5, 120
	cs := startChildren(t, ids, elems, seed, childRDMAEnv+"="+dev)
	l := chase.New(ids, elems, seed)
	origin, err := NewNode(Config{ID: 100, Insecure: true, DefaultTTL: 255, Logger: testLogger(), RDMADevice: dev})
	if err != nil {
		t.Fatal(err)
	}
	defer origin.Close()
	for id, c := range cs {
		origin.SetPeer(id, c.addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	if err := origin.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("3 node processes and the origin up in %v", time.Since(start))
	code := chaseCode(t)

	// Ship, then invoke by hash.
	s0 := origin.Stats()
	r1 := walk(t, ctx, origin, code, l, links)
	s1 := origin.Stats()
	r2 := walk(t, ctx, origin, code, l, links)
	s2 := origin.Stats()
	t.Logf("run 1: %d hops in %v, %d bytes sent, %d ships; run 2: %v, %d bytes, %d ships",
		r1.Hops, r1.Elapsed, s1.Transport.BytesSent-s0.Transport.BytesSent, s1.Ships-s0.Ships,
		r2.Elapsed, s2.Transport.BytesSent-s1.Transport.BytesSent, s2.Ships-s1.Ships)
	if s1.Ships-s0.Ships != 3 || s2.Ships != s1.Ships {
		t.Errorf("ships: %d in run 1 (want 3, one per node), %d in run 2 (want 0)", s1.Ships-s0.Ships, s2.Ships-s1.Ships)
	}
	if sent := s2.Transport.BytesSent - s1.Transport.BytesSent; sent >= s1.ShipBytes/3 {
		t.Errorf("run 2 sent %d bytes, not less than one copy of the code (%d)", sent, s1.ShipBytes/3)
	}
	if r1.Hops < links/3 {
		t.Errorf("only %d hops in %d links: the list is not spread", r1.Hops, links)
	}
	// Every kernel run is an INVOKE or FORWARD a process received; they
	// all came over RDMA, not the TCP fallback.
	var recv, runs uint64
	for _, id := range ids {
		s := cs[id].stats(t)
		for _, c := range s.Conns {
			recv += c.FramesRecv
			t.Logf("node %d ← %d: %d frames in, %d out, min credits %d", id, c.Peer, c.FramesRecv, c.FramesSent, c.MinCredits)
		}
		runs += s.Stats.Invocations
		if s.Stats.ShipsRecv != 1 || s.Stats.CacheEntries != 1 {
			t.Errorf("node %d: %d SHIPs received, %d cached images; want 1 and 1", id, s.Stats.ShipsRecv, s.Stats.CacheEntries)
		}
	}
	if want := uint64(r1.Hops + r2.Hops + 2); runs != want || recv < want {
		t.Errorf("data nodes ran the kernel %d times and received %d frames over RDMA; want %d runs (2 invokes + forwards), as many frames",
			runs, recv, want)
	}

	// Get and Put from the origin: one-sided, verified against the list
	// and against what each node's own kernel reads.
	rt := rdmaOf(t, origin)
	for _, id := range ids {
		waitConn(t, rt, id)
		waitRegion(t, rt, id, "chase", true)
	}
	type mark struct {
		key uint64
		off uint64
		val uint64
	}
	all := []*child{cs[1], cs[2], cs[3]}
	marks := map[uint32]mark{}
	for _, id := range ids {
		for _, k := range l.Order {
			if uint32(k>>32) == id {
				marks[id] = mark{key: k, off: chase.ElemSize * uint64(uint32(k)), val: 0xbc5_0000 + uint64(id)}
				break
			}
		}
	}
	oneSided(t, rt, all, func() {
		for _, id := range ids {
			getEqual(t, ctx, origin, id, 0, l.Regions[id])
			m := marks[id]
			// The marked element ends the list with a value of its own.
			e := make([]byte, chase.ElemSize)
			binary.LittleEndian.PutUint64(e, chase.End)
			binary.LittleEndian.PutUint64(e[8:], m.val)
			if err := origin.Put(ctx, id, "chase", m.off, e); err != nil {
				t.Fatalf("Put to node %d: %v", id, err)
			}
			getEqual(t, ctx, origin, id, m.off, e)
		}
	})
	for _, id := range ids {
		m := marks[id]
		res, err := origin.Invoke(ctx, id, code, "chase", chase.Walk{Key: m.key, Remaining: 5}.Bytes())
		if err != nil {
			t.Fatalf("chase at node %d's marked element: %v", id, err)
		}
		if w, err := chase.Parse(res.Reply()); err != nil || w != (chase.Walk{Key: chase.End, Remaining: 4, Sum: m.val}) {
			t.Fatalf("node %d's kernel after the Put: walk %+v, %v; want it to end at the mark with sum %#x", id, w, err, m.val)
		}
	}
	oneSided(t, rt, all, func() {
		for _, id := range ids {
			m := marks[id]
			if err := origin.Put(ctx, id, "chase", m.off, l.Regions[id][m.off:m.off+chase.ElemSize]); err != nil {
				t.Fatalf("Put to node %d: %v", id, err)
			}
			getEqual(t, ctx, origin, id, 0, l.Regions[id])
		}
	})
	walk(t, ctx, origin, code, l, links) // the list is whole again

	// Kill node 3 while chases run through it.
	errc, at := chaseLoop(ctx, origin, code, l, links)
	time.Sleep(200 * time.Millisecond)
	killed := time.Now()
	if err := cs[3].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case err = <-errc:
	case <-time.After(10 * time.Second):
		t.Fatal("origin hangs 10s after node 3 was killed")
	}
	d := (<-at).Sub(killed)
	t.Logf("kill -9 node 3 → %v after %v", err, d)
	if !errors.Is(err, ErrPeerDown) {
		t.Fatalf("after kill: %v, want ErrPeerDown", err)
	}
	if d > 2*time.Second {
		t.Errorf("ErrPeerDown came %v after the kill, want ≤ 2s", d)
	}
	waitPeerGone(t, origin, 3) // see TestProcesses
	t0 := time.Now()
	_, err = origin.Invoke(ctx, uint32(l.Head>>32), code, "chase", chase.Walk{Key: l.Head, Remaining: links}.Bytes())
	t.Logf("chase needing dead node 3: %v after %v", err, time.Since(t0))
	if !errors.Is(err, ErrPeerDown) || time.Since(t0) > 2*time.Second {
		t.Errorf("chase needing dead node 3: %v after %v, want ErrPeerDown within 2s", err, time.Since(t0))
	}

	// The survivors keep serving: one-sided Get, and a chase forwarding
	// between them along the longest stretch of the list without node 3.
	oneSided(t, rt, []*child{cs[1], cs[2]}, func() {
		for _, id := range []uint32{1, 2} {
			getEqual(t, ctx, origin, id, 0, l.Regions[id])
		}
	})
	from, n := survivorRun(l, 3)
	want := expectRun(l, from, n)
	res, err := origin.Invoke(ctx, uint32(l.Order[from]>>32), code, "chase", chase.Walk{Key: l.Order[from], Remaining: uint64(n)}.Bytes())
	if err != nil {
		t.Fatalf("chase over nodes 1 and 2 after node 3 died: %v", err)
	}
	if w, err := chase.Parse(res.Reply()); err != nil || w != want {
		t.Fatalf("chase of %d links over nodes 1 and 2 = %+v, %v; want %+v", n, w, err, want)
	}
	t.Logf("survivors: chase of %d links, %d forwards, in %v; test took %v", n, want.Hops, res.Elapsed, time.Since(start))
}

// oneSided runs f, which must reach the nodes only by one-sided Get and
// Put: the origin's RDMA connections send no frame, and the processes cs
// receive none.
func oneSided(t *testing.T, rt *rdma.Transport, cs []*child, f func()) {
	t.Helper()
	sent := func() (n uint64) {
		for _, c := range rt.Conns() {
			n += c.FramesSent
		}
		return n
	}
	recv := func() map[uint32]uint64 {
		m := map[uint32]uint64{}
		for _, c := range cs {
			for _, ci := range c.stats(t).Conns {
				m[c.id] += ci.FramesRecv
			}
		}
		return m
	}
	s0, r0 := sent(), recv()
	f()
	s1, r1 := sent(), recv()
	if s1 != s0 {
		t.Errorf("Get/Put sent %d frames over RDMA: not one-sided", s1-s0)
	}
	for id, n := range r0 {
		if r1[id] != n {
			t.Errorf("node %d received %d frames during one-sided Get/Put", id, r1[id]-n)
		}
	}
}

// getEqual reads len(want) bytes at off of node's chase region and checks
// them.
func getEqual(t *testing.T, ctx context.Context, origin *Node, node uint32, off uint64, want []byte) {
	t.Helper()
	got, err := origin.Get(ctx, node, "chase", off, uint32(len(want)))
	if err != nil {
		t.Fatalf("Get %d bytes at %d from node %d: %v", len(want), off, node, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get %d bytes at %d from node %d: differs from the list", len(want), off, node)
	}
}

// survivorRun finds the longest stretch of l's order (not wrapping) with
// no element on node dead: its first index and length.
func survivorRun(l *chase.List, dead uint32) (from, n int) {
	cur := 0
	for i, k := range l.Order {
		if uint32(k>>32) == dead {
			cur = 0
			continue
		}
		cur++
		if cur > n {
			from, n = i-cur+1, cur
		}
	}
	return from, n
}

// expectRun is the walk a chase of n links from l.Order[from] replies,
// computed from the regions.
func expectRun(l *chase.List, from, n int) chase.Walk {
	w := chase.Walk{Key: l.Order[from]}
	for i := from; i < from+n; i++ {
		k := l.Order[i]
		reg := l.Regions[uint32(k>>32)]
		off := chase.ElemSize * uint64(uint32(k))
		w.Sum += binary.LittleEndian.Uint64(reg[off+8:])
		w.Key = binary.LittleEndian.Uint64(reg[off:])
		if i+1 < from+n && w.Key>>32 != k>>32 {
			w.Hops++
		}
	}
	return w
}
