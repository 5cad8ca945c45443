package toolchain

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/bcship/bcship/bundle"
	bcexec "github.com/bcship/bcship/exec"
	"github.com/bcship/bcship/internal/hostrt"
	"github.com/bcship/bcship/loader"
)

// root is the repository root, where testdata/ lives.
const root = ".."

// needClang returns a Toolchain with the process environment and a cache
// in a temporary directory, or skips loudly when clang is missing.
func needClang(t *testing.T) *Toolchain {
	t.Helper()
	tc := New(Config{CacheDir: t.TempDir()})
	if _, err := tc.Tool(context.Background(), Clang); err != nil {
		var te *ToolError
		if errors.As(err, &te) {
			t.Skipf("SKIP (loud): %v; `make deps` installs it", err)
		}
		t.Fatal(err)
	}
	return tc
}

// countingRunner counts llc compiles (not --version probes) and keeps
// the arguments of the last.
type countingRunner struct {
	llc  atomic.Int64
	args atomic.Pointer[[]string]
}

func (c *countingRunner) run(cmd *exec.Cmd) error {
	if strings.HasPrefix(filepath.Base(cmd.Path), "llc") && slices.Contains(cmd.Args, "-filetype=obj") {
		c.llc.Add(1)
		args := slices.Clone(cmd.Args)
		c.args.Store(&args)
	}
	return cmd.Run()
}

// hostObject returns the bundle's object for this process's machine.
func hostObject(t *testing.T, b *bundle.Bundle) []byte {
	t.Helper()
	triple, ok := HostTriple()
	if !ok {
		t.Skipf("SKIP (loud): no triple for host machine %v", loader.HostMachine())
	}
	obj, ok := b.Object(triple)
	if !ok {
		t.Fatalf("bundle has no object for the host triple %s", triple)
	}
	return obj
}

// call loads obj against the host runtime and calls entry(ctx, arg) as
// cmd/bcship's demo does, returning the result and the outbox actions.
func call(t *testing.T, obj []byte, entry string, c *hostrt.Ctx, arg []byte) (int64, []hostrt.Action) {
	t.Helper()
	rt, err := hostrt.Load()
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	img, err := loader.Load(obj, rt)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	fn, err := img.Symbol(entry)
	if err != nil {
		t.Fatal(err)
	}
	ex, err := bcexec.New(bcexec.Options{Symbolize: img.SymbolAt})
	if errors.Is(err, bcexec.ErrNotSupported) {
		t.Skipf("SKIP (loud): native execution is not supported on %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	outbox := make([]byte, 4096)
	c.Outbox, c.OutboxCap = &outbox[0], uint64(len(outbox))
	r, err := ex.Call(context.Background(), fn, unsafe.Pointer(c), unsafe.Pointer(&arg[0]), uint64(len(arg)))
	runtime.KeepAlive(c)
	runtime.KeepAlive(arg)
	runtime.KeepAlive(outbox)
	if err != nil {
		t.Fatalf("calling %s: %v", entry, err)
	}
	acts, err := hostrt.ParseOutbox(outbox[:c.OutboxLen])
	if err != nil {
		t.Fatal(err)
	}
	return r, acts
}

// runChase runs testdata/chase.c's entry over a 64-element cyclic list in
// region "chase" for 50 links and checks the reply: struct walk {key,
// remaining, hops, sum}.
func runChase(t *testing.T, obj []byte) {
	t.Helper()
	const elems, hops = 64, 50
	region := make([]byte, 16*elems)
	var want uint64
	for i := range elems {
		next := (i*7 + 3) % elems // 7 is coprime to 64: one cycle
		binary.LittleEndian.PutUint64(region[16*i:], uint64(next))
		binary.LittleEndian.PutUint64(region[16*i+8:], uint64(i)*3+1)
	}
	for i, k := 0, 5; i < hops; i++ {
		want += uint64(k)*3 + 1
		k = int(binary.LittleEndian.Uint64(region[16*k:]))
	}
	name := []byte("chase")
	regions := []hostrt.Region{{Name: &name[0], NameLen: uint64(len(name)), Base: &region[0], Len: uint64(len(region))}}
	c := &hostrt.Ctx{Regions: &regions[0], NRegions: 1, Self: 0, Nodes: 1}
	arg := make([]byte, 32)
	binary.LittleEndian.PutUint64(arg[0:], 5)    // key: node 0, element 5
	binary.LittleEndian.PutUint64(arg[8:], hops) // remaining
	r, acts := call(t, obj, "chase", c, arg)
	runtime.KeepAlive(regions)
	runtime.KeepAlive(region)
	runtime.KeepAlive(name)
	if r != 0 || len(acts) != 1 || acts[0].Op != hostrt.OpReply || len(acts[0].A) != 32 {
		t.Fatalf("chase returned %d with outbox %+v", r, acts)
	}
	if got := binary.LittleEndian.Uint64(acts[0].A[24:]); got != want {
		t.Fatalf("chase sum %d, want %d", got, want)
	}
	if rem := binary.LittleEndian.Uint64(acts[0].A[8:]); rem != 0 {
		t.Fatalf("chase left %d links", rem)
	}
}

// runMulti runs t_multi of testdata/multi_{a,b}.c: 3v + 82 on first call.
func runMulti(t *testing.T, obj []byte) {
	t.Helper()
	arg := make([]byte, 8)
	binary.LittleEndian.PutUint64(arg, 5)
	r, _ := call(t, obj, "t_multi", &hostrt.Ctx{}, arg)
	if r != 3*5+82 {
		t.Fatalf("t_multi(5) = %d, want %d", r, 3*5+82)
	}
}

// writeSource writes a C file into a temporary directory.
func writeSource(t *testing.T, name, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
