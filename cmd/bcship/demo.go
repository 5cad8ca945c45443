package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"time"
	"unsafe"

	"github.com/bcship/bcship/exec"
	"github.com/bcship/bcship/internal/hostrt"
	"github.com/bcship/bcship/kernels"
	"github.com/bcship/bcship/loader"
	"github.com/spf13/cobra"
)

func newDemo(logger *slog.Logger) *cobra.Command {
	var elems, hops int
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the embedded pointer-chase kernel (no compiler needed)",
		Long: `demo loads the prebuilt pointer-chase kernel embedded in this binary with
bcship's own ELF loader, links it against the host runtime, and runs it on a
linked list in a registered data region.

Today it runs on one in-process node. The multi-node demo (ship over TCP,
forward across a 3-node cluster, cache hit on the second run) needs the node
runtime, which is not built yet; demo says so and exits with status 2.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDemo(cmd.Context(), cmd.OutOrStdout(), elems, hops)
		},
	}
	cmd.Flags().IntVar(&elems, "elems", 4096, "list elements in the region")
	cmd.Flags().IntVar(&hops, "hops", 1024, "links to follow")
	return cmd
}

// errNotYet is the honest exit of a demo that is not complete.
var errNotYet = errors.New("the multi-node part of the demo needs the node runtime, which is not built yet (issue: node runtime, wire protocol and TCP transport)")

// walk mirrors struct walk of testdata/chase.c.
type walk struct {
	Key, Remaining, Hops, Sum uint64
}

func runDemo(ctx context.Context, w io.Writer, elems, hops int) error {
	if elems <= 0 || hops < 0 {
		return fmt.Errorf("demo: --elems must be positive and --hops not negative")
	}
	rt, err := hostrt.Load()
	if err != nil {
		return err
	}
	defer rt.Close()
	obj, err := kernels.Object("chase", loader.HostMachine())
	if err != nil {
		return err
	}
	t0 := time.Now()
	img, err := loader.Load(obj, rt)
	if err != nil {
		return err
	}
	defer img.Close()
	loadTime := time.Since(t0)
	fn, err := img.Symbol("chase")
	if err != nil {
		return err
	}
	text, ro, data := img.SegmentSizes()
	fmt.Fprintf(w, "loaded chase (%v, %d bytes): text %d, rodata %d, data %d, in %v\n",
		loader.HostMachine(), len(obj), text, ro, data, loadTime)

	// A random cyclic permutation: element perm[i] links to perm[i+1].
	region := make([]byte, 16*elems)
	perm := rand.New(rand.NewPCG(1, 2)).Perm(elems)
	var want uint64
	for i, e := range perm {
		next := uint64(perm[(i+1)%elems])
		binary.LittleEndian.PutUint64(region[16*e:], next)
		binary.LittleEndian.PutUint64(region[16*e+8:], uint64(e)*3+1)
	}
	for i, k := 0, perm[0]; i < hops; i++ {
		want += uint64(k)*3 + 1
		k = int(binary.LittleEndian.Uint64(region[16*k:]))
	}

	ex, err := exec.New(exec.Options{Symbolize: img.SymbolAt})
	if err != nil {
		return err
	}
	defer ex.Close()
	name := []byte("chase")
	regions := []hostrt.Region{{Name: &name[0], NameLen: uint64(len(name)), Base: &region[0], Len: uint64(len(region))}}
	outbox := make([]byte, 4096)
	arg := walk{Key: uint64(perm[0]), Remaining: uint64(hops)}
	c := hostrt.Ctx{Outbox: &outbox[0], OutboxCap: uint64(len(outbox)), Regions: &regions[0], NRegions: 1, Self: 0, Nodes: 1}
	t1 := time.Now()
	r, err := ex.Call(ctx, fn, unsafe.Pointer(&c), unsafe.Pointer(&arg), uint64(unsafe.Sizeof(arg)))
	elapsed := time.Since(t1)
	runtime.KeepAlive(&c)
	runtime.KeepAlive(&arg)
	runtime.KeepAlive(regions)
	runtime.KeepAlive(region)
	if err != nil {
		return fmt.Errorf("running chase: %w", err)
	}
	acts, err := hostrt.ParseOutbox(outbox[:c.OutboxLen])
	if err != nil {
		return err
	}
	if r != 0 || len(acts) != 1 || acts[0].Op != hostrt.OpReply || len(acts[0].A) != 32 {
		return fmt.Errorf("chase returned %d with outbox %v", r, acts)
	}
	got := binary.LittleEndian.Uint64(acts[0].A[24:])
	fmt.Fprintf(w, "chased %d links over %d elements in %v (%.1f ns/link): sum %d, expected %d\n",
		hops, elems, elapsed, float64(elapsed.Nanoseconds())/float64(max(hops, 1)), got, want)
	if got != want {
		return fmt.Errorf("demo: wrong answer")
	}
	return &exitError{code: 2, err: errNotYet}
}

// exitError carries a specific exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }
