package main

import (
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	bc "github.com/bcship/bcship"
	"github.com/bcship/bcship/internal/chase"
	"github.com/bcship/bcship/toolchain"
	"github.com/bcship/bcship/wire"
)

// TestArm64JoinsCluster: an arm64 bcshipd under qemu-aarch64-static
// (node 2, no compiler, signed code only) joins a loopback cluster with
// two amd64 nodes that have clang: origin 1 and data node 3. The chase
// bundle holds only the x86_64 object and bitcode, so the origin must
// cross-compile it for aarch64 when node 2 asks, and sign the variant;
// the walk crosses between the architectures and its answer is checked.
func TestArm64JoinsCluster(t *testing.T) {
	requireNative(t)
	if runtime.GOARCH != "amd64" {
		t.Skipf("SKIP (loud): %s needs an amd64 host to emulate arm64 on; GOARCH=%s", t.Name(), runtime.GOARCH)
	}
	qemu := qemuFor(t, "arm64")
	tc, err := toolchain.Find(context.Background())
	if err != nil {
		t.Skipf("SKIP (loud): %s needs clang and llc on the amd64 nodes: %v", t.Name(), err)
	}
	if _, err := tc.LLVMVersion(context.Background()); err != nil {
		t.Skipf("SKIP (loud): %s needs llc to cross-compile for aarch64: %v", t.Name(), err)
	}
	t.Setenv("XDG_CACHE_HOME", t.TempDir()) // a cold compile cache: the cross-compile must happen
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	code, err := tc.Build(ctx, toolchain.BuildOptions{Sources: []string{"../../testdata/chase.c"}, Triples: []string{"x86_64-linux-gnu"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := code.Object("aarch64-linux-gnu"); ok {
		t.Fatal("the bundle has an aarch64 object; the test needs one without")
	}
	if _, ok := code.Bitcode(); !ok {
		t.Fatal("the bundle has no bitcode to cross-compile")
	}
	pub, priv, trust := signWithNewKey(t, code)

	// The amd64 nodes, in this process.
	nodes := map[uint32]*bc.Node{}
	for _, id := range []uint32{1, 3} {
		cfg := bc.Config{ID: id, Listen: "127.0.0.1:0", Trust: []ed25519.PublicKey{pub}, Toolchain: tc, Deadline: 30 * time.Second}
		if id == 1 {
			cfg.SigningKey = priv
		}
		n, err := bc.NewNode(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		nodes[id] = n
	}
	l := chase.New([]uint32{2, 3}, 48, 7)
	regionFile := filepath.Join(t.TempDir(), "chase2.bin")
	if err := os.WriteFile(regionFile, l.Regions[2], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := nodes[3].RegisterRegion("chase", l.Regions[3]); err != nil {
		t.Fatal(err)
	}

	// Node 2: bcshipd for arm64, configured through the environment.
	bin := buildDaemon(t, "arm64")
	peers := "1=" + nodes[1].Addr().String() + ",3=" + nodes[3].Addr().String()
	d := startDaemon(t, qemu, bin, []string{"--region", "chase=" + regionFile, "--deadline", "30s"},
		[]string{"BCSHIP_ID=2", "BCSHIP_LISTEN=127.0.0.1:0", "BCSHIP_PEERS=" + peers, "BCSHIP_TRUST=" + trust, "BCSHIP_LOG_LEVEL=debug"})
	addr := d.waitReady(60 * time.Second)
	for _, n := range nodes {
		n.SetPeer(2, addr)
		for _, m := range nodes {
			n.SetPeer(m.ID(), m.Addr().String())
		}
	}

	const links = 40
	for round := range 2 {
		res, err := nodes[1].Invoke(ctx, uint32(l.Head>>32), code, "chase", chase.Walk{Key: l.Head, Remaining: links}.Bytes())
		if err != nil {
			t.Fatalf("round %d: chase of %d links: %v\nbcshipd log:\n%s", round, links, err, d.Logs())
		}
		got, err := chase.Parse(res.Reply())
		if err != nil {
			t.Fatalf("round %d: status %d: %v", round, res.Status, err)
		}
		if want := l.Expect(links); got != want {
			t.Fatalf("round %d: chase = %+v, want %+v", round, got, want)
		}
		t.Logf("round %d: %d links, %d hops between x86_64 and aarch64, %v", round, links, got.Hops, res.Elapsed)
	}

	// What node 2 told the origin, and what the origin had to do for it.
	known := nodes[1].Peers()
	i := slices.IndexFunc(known, func(p bc.PeerInfo) bool { return p.ID == 2 })
	if i < 0 {
		t.Fatal("origin has no peer 2")
	}
	h := known[i].Hello
	if h.Caps.Has(wire.CapLLVM) || h.LLVM != 0 {
		t.Errorf("bcshipd announced LLVM %d (caps %v); it must announce none", h.LLVM, h.Caps)
	}
	if !slices.Equal(h.Triples, []string{"aarch64-linux-gnu"}) {
		t.Errorf("bcshipd announced triples %v, want [aarch64-linux-gnu]", h.Triples)
	}
	if s := tc.Stats(); s.LLCRuns < 1 {
		t.Errorf("origin's toolchain ran llc %d times; the aarch64 object must have been cross-compiled", s.LLCRuns)
	}
	if s := nodes[1].Stats(); s.Ships < 2 {
		t.Errorf("origin shipped %d times; want the original and the cross-compiled variant", s.Ships)
	}
	t.Logf("origin: %+v", nodes[1].Stats())
}
