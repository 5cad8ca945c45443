package bcship

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/bcship/bcship/internal/chase"
	"github.com/bcship/bcship/transport/rdma"
	"github.com/bcship/bcship/wire"
)

// The TestRdma* tests run nodes on transport/rdma over soft-RoCE; they
// need the VM (make rxe-test), and skip on the host.

func init() {
	if os.Getenv("BCSHIP_RXE") == "" && os.Getenv(childEnv) == "" {
		fmt.Fprintln(os.Stderr, "bcship: NO RDMA DEVICE: the TestRdma* node tests SKIP on the host. "+
			"Run them in the soft-RoCE VM: make rxe-test (go test -run TestRdma -exec \"go run ./internal/cmd/rxevm --\" .)")
	}
}

func rdmaDevice(t testing.TB) string {
	t.Helper()
	d := os.Getenv("BCSHIP_RXE")
	if d == "" {
		t.Skip("SKIPPED: needs soft-RoCE (BCSHIP_RXE unset); run `make rxe-test` to run the RDMA node tests in the VM")
	}
	return d
}

// rdmaOf is n's RDMA transport.
func rdmaOf(t testing.TB, n *Node) *rdma.Transport {
	t.Helper()
	rt, ok := n.Transport().(*rdma.Transport)
	if !ok {
		t.Fatalf("node %d runs on %T, not RDMA", n.ID(), n.Transport())
	}
	return rt
}

// connTo is rt's RDMA connection to peer.
func connTo(rt *rdma.Transport, peer uint32) (rdma.ConnInfo, bool) {
	for _, c := range rt.Conns() {
		if c.Peer == peer && c.Ready {
			return c, true
		}
	}
	return rdma.ConnInfo{}, false
}

// waitConn waits until rt's RDMA connection to peer is ready: the
// responder's side turns ready only when the initiator's READY arrives.
func waitConn(t testing.TB, rt *rdma.Transport, peer uint32) rdma.ConnInfo {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, ok := connTo(rt, peer); ok {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ready RDMA connection to node %d after 10s: %+v", peer, rt.Conns())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitRegion waits until peer's region table, as rt knows it, has region
// (present) or lacks it: REGIONS updates travel asynchronously.
func waitRegion(t testing.TB, rt *rdma.Transport, peer uint32, region string, present bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		found := false
		for _, r := range rt.RemoteRegions(peer) {
			found = found || r.Name == region
		}
		if found == present {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("region %q of node %d: present=%v after 10s: %+v", region, peer, found, rt.RemoteRegions(peer))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRdmaChase runs the prebuilt chase kernel across three RDMA nodes
// from an RDMA client: shipped once, then invoked by hash, every forward
// over RC queue pairs.
func TestRdmaChase(t *testing.T) {
	dev := rdmaDevice(t)
	nodes := cluster(t, []uint32{1, 2, 3, 100}, func(c *Config) { c.DefaultTTL = 255; c.RDMADevice = dev })
	l := chase.New([]uint32{1, 2, 3}, 300, 7)
	registerList(t, nodes, l)
	code := chaseCode(t)
	origin := nodes[100]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // TCG
	defer cancel()

	res := walk(t, ctx, origin, code, l, 200)
	s1 := origin.Stats()
	res2 := walk(t, ctx, origin, code, l, 200)
	s2 := origin.Stats()
	t.Logf("rdma chase: first run %d hops in %v (%d ships); second %v, %d bytes sent by the origin",
		res.Hops, res.Elapsed, s1.Ships, res2.Elapsed, s2.Transport.BytesSent-s1.Transport.BytesSent)
	if res.Hops < 50 {
		t.Errorf("only %d hops: the list is not spread", res.Hops)
	}
	if s1.Ships == 0 {
		t.Errorf("first run shipped no code")
	}
	if s2.Ships != s1.Ships {
		t.Errorf("second run shipped code again: %d ships", s2.Ships-s1.Ships)
	}
	// Every forward is a frame a data node received; they all came over
	// RDMA, not the TCP fallback.
	var recv uint64
	for _, id := range []uint32{1, 2, 3} {
		rt := rdmaOf(t, nodes[id])
		for _, c := range rt.Conns() {
			recv += c.FramesRecv
			t.Logf("node %d ← %d: %d frames in, %d out, min credits %d, %d credit messages",
				id, c.Peer, c.FramesRecv, c.FramesSent, c.MinCredits, c.CreditMsgs)
		}
		if st := nodes[id].Stats(); st.Invocations == 0 || st.CacheEntries != 1 {
			t.Errorf("node %d: %d invocations, %d cached images", id, st.Invocations, st.CacheEntries)
		}
	}
	if want := uint64(res.Hops + res2.Hops); recv < want {
		t.Errorf("data nodes received %d frames over RDMA, fewer than the %d forwards", recv, want)
	}
}

// TestRdmaGetPut checks that Node.Get and Put to an RDMA peer are
// one-sided (no frame reaches the target), that accesses the advertised
// table cannot serve fall back to messages with the TCP errors, and that a
// peer without RDMA is served over TCP.
func TestRdmaGetPut(t *testing.T) {
	dev := rdmaDevice(t)
	start := func(id uint32, dev string, regions map[string][]byte) *Node {
		n, err := NewNode(Config{ID: id, Listen: "127.0.0.1:0", Insecure: true, Logger: testLogger(), RDMADevice: dev})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		for name, d := range regions {
			if err := n.RegisterRegion(name, d); err != nil {
				t.Fatal(err)
			}
		}
		if err := n.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		return n
	}
	pattern := func(n int, seed byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*7) + seed
		}
		return b
	}
	// Node 2 registers "pre" before Start (Start hands it to the device)
	// and "mem" after; node 3 has no RDMA.
	pre := pattern(256, 1)
	n1 := start(1, dev, nil)
	n2 := start(2, dev, map[string][]byte{"pre": pre})
	mem3 := make([]byte, 64)
	n3 := start(3, "", map[string][]byte{"mem": mem3})
	nodes := []*Node{n1, n2, n3}
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				a.SetPeer(b.ID(), b.Addr().String())
			}
		}
	}
	mem := make([]byte, 4096)
	if err := n2.RegisterRegion("mem", mem); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The first access sets the RDMA connection up; its table has "pre".
	if got, err := n1.Get(ctx, 2, "pre", 8, 16); err != nil || !bytes.Equal(got, pre[8:24]) {
		t.Fatalf("Get pre = %x, %v; want %x", got, err, pre[8:24])
	}
	r1, r2 := rdmaOf(t, n1), rdmaOf(t, n2)
	waitRegion(t, r1, 2, "mem", true)
	c12 := waitConn(t, r1, 2)
	c21 := waitConn(t, r2, 1)

	const rounds = 50
	t0 := time.Now()
	for i := range rounds {
		off := uint64(i * 64)
		data := pattern(64, byte(i))
		if err := n1.Put(ctx, 2, "mem", off, data); err != nil {
			t.Fatalf("Put %d: %v", i, err)
		}
		if !bytes.Equal(mem[off:off+64], data) { // written by the NIC, not node 2
			t.Fatalf("Put %d: node 2 holds %x", i, mem[off:off+64])
		}
		got, err := n1.Get(ctx, 2, "mem", off, 64)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("Get %d = %x, %v", i, got, err)
		}
	}
	per := time.Since(t0) / (2 * rounds)
	a12, _ := connTo(r1, 2)
	a21, _ := connTo(r2, 1)
	t.Logf("%d one-sided PUT+GET pairs, %v each; frames 1→2 %d, received by 2 from 1 %d",
		rounds, per, a12.FramesSent-c12.FramesSent, a21.FramesRecv-c21.FramesRecv)
	if a12.FramesSent != c12.FramesSent || a21.FramesRecv != c21.FramesRecv {
		t.Errorf("Get/Put sent messages: %d frames from 1 to 2, %d received by 2: not one-sided",
			a12.FramesSent-c12.FramesSent, a21.FramesRecv-c21.FramesRecv)
	}

	// Larger than one scratch slot: split into several READs/WRITEs.
	big := make([]byte, 3*rdma.DefaultScratchSize/2+100)
	if err := n2.RegisterRegion("big", big); err != nil {
		t.Fatal(err)
	}
	waitRegion(t, r1, 2, "big", true)
	want := pattern(len(big)-10, 9)
	if err := n1.Put(ctx, 2, "big", 10, want); err != nil {
		t.Fatal(err)
	}
	if got, err := n1.Get(ctx, 2, "big", 10, uint32(len(want))); err != nil || !bytes.Equal(got, want) || !bytes.Equal(big[10:], want) {
		t.Fatalf("big Get: %v (equal %v)", err, bytes.Equal(got, want))
	}

	// Outside the advertised table: refused at the origin, then answered
	// by node 2 over messages, with the errors TCP gives.
	_, err := n1.Get(ctx, 2, "mem", 4090, 16)
	wantRemote(t, err, ErrOutOfRange, wire.CodeOutOfRange, 2)
	err = n1.Put(ctx, 2, "nosuch", 0, []byte("x"))
	wantRemote(t, err, ErrNoRegion, wire.CodeNoRegion, 2)
	if err := n2.RegisterRegion("mem", nil); err != nil {
		t.Fatal(err)
	}
	waitRegion(t, r1, 2, "mem", false)
	_, err = n1.Get(ctx, 2, "mem", 0, 8)
	wantRemote(t, err, ErrNoRegion, wire.CodeNoRegion, 2)

	// Node 3 has no RDMA: messages over TCP.
	if err := n1.Put(ctx, 3, "mem", 8, []byte("over tcp")); err != nil {
		t.Fatal(err)
	}
	if got, err := n1.Get(ctx, 3, "mem", 8, 8); err != nil || string(got) != "over tcp" {
		t.Fatalf("Get from node 3 = %q, %v", got, err)
	}
	if _, ok := connTo(r1, 3); ok {
		t.Errorf("RDMA connection to node 3, which has no RDMA")
	}
	if err := n1.Put(ctx, 2, "pre", 0, []byte("!")); err != nil || pre[0] != '!' {
		t.Fatalf("Put pre after the TCP peer: %v", err)
	}
	if _, err := n1.Get(ctx, 9, "mem", 0, 1); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("Get from unknown node 9 = %v, want ErrUnknownPeer", err)
	}
}

// TestNodeRDMANoDevice runs on the host too: a node asked to use a device
// that does not exist fails to start with ErrNoRDMA, not silently on TCP.
func TestNodeRDMANoDevice(t *testing.T) {
	n, err := NewNode(Config{ID: 1, Listen: "127.0.0.1:0", Insecure: true, Logger: testLogger(), RDMADevice: "nosuchdev9"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	err = n.Start(context.Background())
	if !errors.Is(err, rdma.ErrNoRDMA) {
		t.Fatalf("Start = %v, want ErrNoRDMA", err)
	}
	if n.Addr() != nil {
		t.Fatalf("a node that failed to start listens on %v", n.Addr())
	}
}
