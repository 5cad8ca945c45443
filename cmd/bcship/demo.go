package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	bc "github.com/bcship/bcship"
	"github.com/bcship/bcship/bundle"
	"github.com/bcship/bcship/internal/chase"
	"github.com/bcship/bcship/kernels"
	"github.com/bcship/bcship/loader"
	"github.com/bcship/bcship/toolchain"
	"github.com/spf13/cobra"
)

func newDemo(logger *slog.Logger) *cobra.Command {
	var o demoOptions
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Chase pointers across a 3-node loopback cluster (no compiler needed)",
		Long: `demo starts an in-process cluster on loopback TCP: data nodes 1..N, each
holding part of one linked list in its "chase" region (elements placed at
random), and a client node 0 that holds no data. The client ships the
pointer-chase kernel embedded in this binary (prebuilt, signed with a
throwaway key the nodes trust) to the node holding the list's head; the
kernel follows links while they stay on its node, forwards itself to the
owner of the next element, and the last node replies straight to the
client. The answer is checked against the same walk computed in Go.

The walk runs twice: the first run ships the code, the second finds it
cached on every node and sends only its hash.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// Node events would drown the demo's output; keep warnings.
			quiet := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
			return runDemo(cmd.Context(), cmd.OutOrStdout(), quiet, o)
		},
	}
	cmd.Flags().IntVar(&o.nodes, "nodes", 3, "data nodes")
	cmd.Flags().IntVar(&o.elems, "elems", 4096, "list elements")
	cmd.Flags().IntVar(&o.links, "links", 256, "links to follow per walk (each move between nodes uses one of 255 TTL)")
	cmd.Flags().Uint64Var(&o.seed, "seed", 1, "seed of the random placement")
	cmd.Flags().IntVar(&o.runs, "runs", 2, "walks to run")
	return cmd
}

type demoOptions struct {
	nodes, elems, links, runs int
	seed                      uint64
}

func runDemo(ctx context.Context, w io.Writer, logger *slog.Logger, o demoOptions) error {
	if o.nodes < 1 || o.nodes > 64 || o.elems < 1 || o.links < 1 || o.runs < 1 {
		return fmt.Errorf("demo: --nodes must be 1-64 and --elems, --links, --runs positive")
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()

	code, pub, err := demoCode()
	if err != nil {
		return err
	}
	// Data nodes 1..N and the client, node 0, all on ephemeral ports.
	var ids []uint32
	for i := 1; i <= o.nodes; i++ {
		ids = append(ids, uint32(i))
	}
	all := map[uint32]*bc.Node{}
	for _, id := range append([]uint32{0}, ids...) {
		n, err := bc.NewNode(bc.Config{
			ID: id, Listen: "127.0.0.1:0", Trust: []ed25519.PublicKey{pub}, DefaultTTL: 255, Logger: logger,
		})
		if err != nil {
			return err
		}
		defer n.Close()
		if err := n.Start(ctx); err != nil {
			return err
		}
		all[id] = n
	}
	for _, a := range all {
		for _, b := range all {
			if a != b {
				a.SetPeer(b.ID(), b.Addr().String())
			}
		}
	}
	client := all[0]

	l := chase.New(ids, o.elems, o.seed)
	var addrs, holds []string
	for _, id := range ids {
		all[id].RegisterRegion("chase", l.Regions[id])
		addrs = append(addrs, fmt.Sprintf("node %d %s", id, all[id].Addr()))
		holds = append(holds, fmt.Sprintf("node %d: %d", id, len(l.Regions[id])/chase.ElemSize))
	}
	h := code.Hash()
	data, _ := code.Marshal()
	fmt.Fprintf(w, "cluster: %s; client node 0 %s\n", strings.Join(addrs, ", "), client.Addr())
	fmt.Fprintf(w, "list:    %d elements at random (seed %d): %s\n", o.elems, o.seed, strings.Join(holds, ", "))
	fmt.Fprintf(w, "code:    prebuilt chase for %s, bundle %d bytes, hash %s…, signed (nodes trust the demo key)\n",
		client.Triple(), len(data), h.String()[:16])
	fmt.Fprintf(w, "walk:    %s\n", walkPath(l, o.links, 12))

	want := l.Expect(o.links)
	arg := chase.Walk{Key: l.Head, Remaining: uint64(o.links)}.Bytes()
	head := uint32(l.Head >> 32)
	for run := 1; run <= o.runs; run++ {
		before := statsOf(all)
		res, err := client.Invoke(ctx, head, code, "chase", arg)
		if err != nil {
			return fmt.Errorf("run %d: %w", run, err)
		}
		after := statsOf(all)
		got, err := chase.Parse(res.Reply())
		if err != nil {
			return fmt.Errorf("run %d: status %d: %w", run, res.Status, err)
		}
		ok := got == want && res.Hops == int(want.Hops)
		check := "matches the walk computed in Go"
		if !ok {
			check = fmt.Sprintf("WRONG: Go computed sum %d, %d hops, end key %#x", want.Sum, want.Hops, want.Key)
		}
		perHop := res.Elapsed / time.Duration(max(res.Hops, 1))
		d := after.sub(before)
		fmt.Fprintf(w, "run %d:   %d links, %d hops, sum %d, ends at key %#x (%s)\n", run, o.links, res.Hops, got.Sum, got.Key, check)
		fmt.Fprintf(w, "         %v, %v per hop; reply from node %d\n", res.Elapsed.Round(time.Microsecond), perHop.Round(100*time.Nanosecond), res.Node)
		cache := fmt.Sprintf("code cache: %d misses, %d hits", d.misses, d.hits)
		if d.misses == 0 {
			cache = fmt.Sprintf("cache hit on every node (%d hits, 0 misses)", d.hits)
		}
		fmt.Fprintf(w, "         client sent %d bytes: %d SHIP (%d bytes of code); %s\n", d.clientSent, d.ships, d.shipBytes, cache)
		if !ok {
			return &exitError{code: 1, err: fmt.Errorf("demo: wrong answer in run %d", run)}
		}
		if run > 1 && (d.ships != 0 || d.misses != 0) {
			return &exitError{code: 1, err: fmt.Errorf("demo: run %d shipped code again", run)}
		}
	}
	fmt.Fprintln(w, "ok")
	return nil
}

// demoCode wraps the embedded chase object for this machine and signs it
// with a throwaway key.
func demoCode() (*bundle.Bundle, ed25519.PublicKey, error) {
	obj, err := kernels.Object("chase", loader.HostMachine())
	if err != nil {
		return nil, nil, err
	}
	b, err := toolchain.ParseCode(obj)
	if err != nil {
		return nil, nil, err
	}
	pub, priv, err := bundle.GenerateKey()
	if err != nil {
		return nil, nil, err
	}
	if err := b.Sign(priv); err != nil {
		return nil, nil, err
	}
	return b, pub, nil
}

// walkPath describes the walk's moves between nodes, from the list itself:
// each node visited and, in parentheses, the links followed there.
func walkPath(l *chase.List, links, show int) string {
	var segs []string
	cur, count := uint32(l.Order[0]>>32), 0
	for i := 0; i < links; i++ {
		if nd := uint32(l.Order[i%len(l.Order)] >> 32); nd != cur {
			segs = append(segs, fmt.Sprintf("node %d (%d)", cur, count))
			cur, count = nd, 0
		}
		count++
	}
	segs = append(segs, fmt.Sprintf("node %d (%d)", cur, count))
	if len(segs) > show {
		segs = append(segs[:show:show], fmt.Sprintf("… %d more moves", len(segs)-show))
	}
	return strings.Join(segs, " → ")
}

type demoStats struct {
	clientSent, ships, shipBytes, hits, misses uint64
}

func statsOf(all map[uint32]*bc.Node) demoStats {
	var d demoStats
	for id, n := range all {
		s := n.Stats()
		if id == 0 {
			d.clientSent = s.Transport.BytesSent
		}
		d.ships += s.Ships
		d.shipBytes += s.ShipBytes
		d.hits += s.CacheHits
		d.misses += s.CacheMisses
	}
	return d
}

func (a demoStats) sub(b demoStats) demoStats {
	return demoStats{a.clientSent - b.clientSent, a.ships - b.ships, a.shipBytes - b.shipBytes, a.hits - b.hits, a.misses - b.misses}
}

// exitError carries a specific exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }
