package bcship

import (
	"context"
	"errors"
	"testing"

	"github.com/bcship/bcship/bundle"
	"github.com/bcship/bcship/internal/chase"
	"github.com/bcship/bcship/toolchain"
	"github.com/bcship/bcship/wire"
)

// TestCrossCompileForPeer: node 2 runs a triple the bundle has no object
// for and has no toolchain; the origin compiles the bitcode for it, signs
// the result with its key, and the walk runs. Without a toolchain at the
// origin the same request fails with ErrNoTriple.
func TestCrossCompileForPeer(t *testing.T) {
	tc, err := toolchain.Find(context.Background())
	if err != nil {
		t.Skipf("SKIP (loud): needs clang: %v", err)
	}
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	host, _ := toolchain.HostTriple()
	ctx := context.Background()
	code, err := tc.Build(ctx, toolchain.BuildOptions{Sources: []string{"testdata/chase.c"}, Triples: []string{host}})
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, err := bundle.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := code.Sign(priv); err != nil {
		t.Fatal(err)
	}
	// The same architecture under another triple name: llc compiles for
	// it, and the loader can run the result here.
	other := map[string]string{"x86_64-linux-gnu": "x86_64-unknown-linux-gnu", "aarch64-linux-gnu": "aarch64-unknown-linux-gnu"}[host]
	nodes := cluster(t, []uint32{1, 2, 3}, func(c *Config) {
		c.Insecure = false
		c.Trust = append(c.Trust, pub)
		if c.ID == 1 {
			c.Toolchain, c.SigningKey = tc, priv
		}
	})
	nodes[2].triple = other
	l := chase.New([]uint32{2}, 20, 4)
	registerList(t, nodes, l)

	_, err = nodes[3].Invoke(ctx, 2, code, "chase", chase.Walk{Key: l.Head, Remaining: 3}.Bytes())
	wantRemote(t, err, ErrNoTriple, wire.CodeNoTriple, 2)
	if !errors.Is(err, ErrNoTriple) {
		t.Fatal(err)
	}

	res := walk(t, ctx, nodes[1], code, l, 10)
	t.Logf("cross-compiled walk: %v", res.Elapsed)
	if nodes[1].Stats().Ships < 2 {
		t.Errorf("origin shipped %d times; want the original and the cross-compiled variant", nodes[1].Stats().Ships)
	}
}
