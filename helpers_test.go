package bcship

import (
	"context"
	"crypto/ed25519"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/bcship/bcship/bundle"
	"github.com/bcship/bcship/internal/chase"
	"github.com/bcship/bcship/kernels"
	"github.com/bcship/bcship/loader"
	"github.com/bcship/bcship/toolchain"
)

// testLogger logs to stderr with BCSHIP_TEST_LOG set, else nowhere.
func testLogger() *slog.Logger {
	if os.Getenv("BCSHIP_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// cluster starts in-process nodes with the given ids on loopback, each
// knowing every other's address.
func cluster(t testing.TB, ids []uint32, mod func(*Config)) map[uint32]*Node {
	t.Helper()
	nodes := map[uint32]*Node{}
	for _, id := range ids {
		cfg := Config{ID: id, Listen: "127.0.0.1:0", Insecure: true, Logger: testLogger(), Deadline: 2 * time.Second}
		if mod != nil {
			mod(&cfg)
		}
		n, err := NewNode(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		nodes[id] = n
	}
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				a.SetPeer(b.ID(), b.Addr().String())
			}
		}
	}
	return nodes
}

// chaseCode is the prebuilt chase kernel for this machine, as a bundle.
func chaseCode(t testing.TB) *bundle.Bundle {
	t.Helper()
	obj, err := kernels.Object("chase", loader.HostMachine())
	if err != nil {
		t.Fatal(err)
	}
	b, err := toolchain.ParseCode(obj)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// idleNode is node id, not started (no transport), closed when t ends.
func idleNode(t testing.TB, id uint32) *Node {
	t.Helper()
	n, err := NewNode(Config{ID: id, Insecure: true, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// signed returns a signed copy of b and the key that trusts it.
func signed(t testing.TB, b *bundle.Bundle) (*bundle.Bundle, ed25519.PublicKey) {
	t.Helper()
	data, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	c, err := bundle.Read(data)
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, err := bundle.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Sign(priv); err != nil {
		t.Fatal(err)
	}
	return c, pub
}

// registerList registers l's regions on the nodes.
func registerList(t testing.TB, nodes map[uint32]*Node, l *chase.List) {
	t.Helper()
	for id, r := range l.Regions {
		if err := nodes[id].RegisterRegion("chase", r); err != nil {
			t.Fatal(err)
		}
	}
}

// walk runs a chase of links links from origin and checks the reply.
func walk(t testing.TB, ctx context.Context, origin *Node, code *bundle.Bundle, l *chase.List, links int) *Result {
	t.Helper()
	res, err := origin.Invoke(ctx, uint32(l.Head>>32), code, "chase", chase.Walk{Key: l.Head, Remaining: uint64(links)}.Bytes())
	if err != nil {
		t.Fatalf("chase of %d links: %v", links, err)
	}
	got, err := chase.Parse(res.Reply())
	if err != nil {
		t.Fatalf("status %d: %v", res.Status, err)
	}
	if want := l.Expect(links); got != want {
		t.Fatalf("chase of %d links = %+v, want %+v", links, got, want)
	}
	if res.Hops != int(got.Hops) && got.Hops < 255 {
		t.Errorf("Result.Hops = %d, walk counted %d", res.Hops, got.Hops)
	}
	return res
}
