package toolchain

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bcship/bcship/bundle"
	"github.com/bcship/bcship/internal/hostrt"
	"github.com/bcship/bcship/loader"
)

const riscv = "riscv64-linux-gnu"

// TestBuildChase builds testdata/chase.c for x86_64, aarch64 and (when
// clang has the target) riscv64, checks that the loader links the first
// two, and runs the object for this machine.
func TestBuildChase(t *testing.T) {
	tc := needClang(t)
	ctx := context.Background()
	clang, _ := tc.Tool(ctx, Clang)
	triples := DefaultTriples()
	if clang.Supports(riscv) {
		triples = append(triples, riscv)
	} else {
		t.Logf("NOTE (loud): %s (LLVM %v) has no riscv64 target; building x86_64 and aarch64 only", clang.Path, clang.Version)
	}
	var warnings bytes.Buffer
	b, err := tc.Build(ctx, BuildOptions{Sources: []string{"testdata/chase.c"}, Triples: triples, Dir: root, Stderr: &warnings})
	if err != nil {
		t.Fatal(err)
	}
	if warnings.Len() > 0 {
		t.Errorf("unexpected warnings:\n%s", warnings.String())
	}
	if b.Name != "chase" || !slices.Equal(b.Entries, []string{"chase"}) || b.LLVMVersion != clang.Version.Major {
		t.Fatalf("manifest %+v", b.Manifest)
	}
	if len(b.Objects) != len(triples) {
		t.Fatalf("%d objects, want %d", len(b.Objects), len(triples))
	}
	if bc, ok := b.Bitcode(); !ok || !isBitcode(bc) {
		t.Fatal("no bitcode in the bundle")
	}
	tab, err := hostrt.Table()
	if err != nil {
		t.Fatal(err)
	}
	for _, triple := range triples {
		obj, _ := b.Object(triple)
		err := loader.Check(obj, tab)
		if triple == riscv {
			// The loader has no riscv64 relocations yet; the object must
			// still be a riscv64 ET_REL with the entry.
			if !errors.Is(err, loader.ErrMachine) {
				t.Errorf("riscv64 object: loader.Check = %v, want ErrMachine until the loader supports riscv64", err)
			}
			if tr, err := objectTriple(obj); err != nil || tr != riscv {
				t.Errorf("riscv64 object: triple %q, %v", tr, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s object does not link: %v", triple, err)
		}
	}
	// The bundle survives its own format.
	data, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bundle.Read(data); err != nil {
		t.Fatal(err)
	}
	runChase(t, hostObject(t, b))
}

// TestBuildMultiSource links two sources per triple with ld.lld -r and
// their IR with llvm-link.
func TestBuildMultiSource(t *testing.T) {
	tc := needClang(t)
	ctx := context.Background()
	clang, _ := tc.Tool(ctx, Clang)
	for _, tool := range []Tool{LLD, LLVMLink} {
		if _, err := tc.companion(ctx, tool, clang.Version.Major); err != nil {
			t.Skipf("SKIP (loud): %v", err)
		}
	}
	b, err := tc.Build(ctx, BuildOptions{Sources: []string{"testdata/multi_a.c", "testdata/multi_b.c"}, Dir: root, Opt: "-O1"})
	if err != nil {
		t.Fatal(err)
	}
	if b.Name != "multi_a" || !slices.Equal(b.Entries, []string{"t_multi"}) {
		t.Fatalf("manifest %+v", b.Manifest)
	}
	tab, _ := hostrt.Table()
	for _, o := range b.Objects {
		obj, _ := b.Object(o.Triple)
		if err := loader.Check(obj, tab); err != nil {
			t.Errorf("%s: %v", o.Triple, err)
		}
	}
	runMulti(t, hostObject(t, b))

	triple, _ := HostTriple()
	bc, _ := b.Bitcode()
	obj, err := tc.CompileBitcode(ctx, bc, triple, b.LLVMVersion)
	if errors.Is(err, ErrNeedCrossCompile) {
		t.Skipf("SKIP (loud): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	runMulti(t, obj)
}

// TestCompileError checks that clang's diagnostics reach the caller with
// their file:line.
func TestCompileError(t *testing.T) {
	tc := needClang(t)
	src := writeSource(t, "broken.c", "#include \"bcship.h\"\n\nBC_ENTRY int64_t f(bc_ctx *c, const void *a, uint64_t n) {\n  return undeclared_thing;\n}\n")
	_, err := tc.Build(context.Background(), BuildOptions{Sources: []string{src}})
	var ce *CompileError
	if !errors.As(err, &ce) || !errors.Is(err, ErrCompile) {
		t.Fatalf("got %v, want a *CompileError", err)
	}
	if want := src + ":4:"; !strings.Contains(ce.Stderr, want) || !strings.Contains(err.Error(), want) {
		t.Fatalf("diagnostics lack %q:\n%v", want, err)
	}
	if !strings.Contains(ce.Stderr, "undeclared_thing") || ce.Tool != Clang {
		t.Fatalf("unexpected diagnostics: %v", err)
	}
	t.Logf("%v", err)

	// Warnings go to Stderr, once though clang ran once per triple and
	// once more for the bitcode.
	src = writeSource(t, "warn.c", "#include \"bcship.h\"\n#ifdef WARN\n#warning look here\n#endif\nBC_ENTRY int64_t f(bc_ctx *c, const void *a, uint64_t n) { return 0; }\n")
	var w bytes.Buffer
	if _, err := tc.Build(context.Background(), BuildOptions{Sources: []string{src}, Defines: []string{"WARN"}, Stderr: &w}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(w.String(), src+":3:2: warning: look here"); n != 1 {
		t.Fatalf("warning shown %d times, want once:\n%s", n, w.String())
	}
}

func TestEntriesMustAgree(t *testing.T) {
	tc := needClang(t)
	src := writeSource(t, "ifdef.c", `#include "bcship.h"
BC_ENTRY int64_t everywhere(bc_ctx *c, const void *a, uint64_t n) { return 0; }
#ifdef __x86_64__
BC_ENTRY int64_t x86_only(bc_ctx *c, const void *a, uint64_t n) { return 1; }
#endif
`)
	_, err := tc.Build(context.Background(), BuildOptions{Sources: []string{src}, NoBitcode: true})
	var ee *EntriesError
	if !errors.As(err, &ee) || !errors.Is(err, ErrEntriesDiffer) {
		t.Fatalf("got %v, want an *EntriesError", err)
	}
	if !slices.Equal(ee.Entries["x86_64-linux-gnu"], []string{"everywhere", "x86_only"}) {
		t.Fatalf("entries %v", ee.Entries)
	}
	src = writeSource(t, "none.c", "long helper(void) { return 0; }\n")
	if _, err := tc.Build(context.Background(), BuildOptions{Sources: []string{src}, NoBitcode: true}); !errors.Is(err, ErrNoEntries) {
		t.Fatalf("got %v, want ErrNoEntries", err)
	}
}

// TestReproducible: with SOURCE_DATE_EPOCH, two builds have one code hash.
func TestReproducible(t *testing.T) {
	needClang(t)
	env := func(k string) string {
		if k == "SOURCE_DATE_EPOCH" {
			return "1767225600"
		}
		return os.Getenv(k)
	}
	var hashes []bundle.Digest
	for range 2 {
		tc := New(Config{Getenv: env, CacheDir: t.TempDir()})
		b, err := tc.Build(context.Background(), BuildOptions{Sources: []string{"testdata/chase.c"}, Dir: root})
		if err != nil {
			t.Fatal(err)
		}
		if !b.Created.Equal(time.Unix(1767225600, 0)) {
			t.Fatalf("created %v", b.Created)
		}
		hashes = append(hashes, b.Hash())
	}
	if hashes[0] != hashes[1] {
		t.Fatalf("two builds, two hashes: %v %v", hashes[0], hashes[1])
	}
	bad := New(Config{Getenv: func(k string) string {
		if k == "SOURCE_DATE_EPOCH" {
			return "yesterday"
		}
		return ""
	}})
	if _, err := bad.Build(context.Background(), BuildOptions{Sources: []string{"testdata/chase.c"}, Dir: root}); !errors.Is(err, ErrBadOption) {
		t.Fatalf("bad SOURCE_DATE_EPOCH: %v", err)
	}
}

func TestBuildOptions(t *testing.T) {
	tc := New(Config{CacheDir: t.TempDir()})
	chase := filepath.Join(root, "testdata", "chase.c")
	for _, o := range []BuildOptions{
		{},
		{Sources: []string{"no/such.c"}},
		{Sources: []string{chase}, Opt: "4"},
		{Sources: []string{chase}, Triples: []string{"x86_64 linux"}},
		{Sources: []string{chase}, Name: "has space"},
	} {
		if _, err := tc.Build(context.Background(), o); !errors.Is(err, ErrBadOption) {
			t.Errorf("%+v: got %v, want ErrBadOption", o, err)
		}
	}
	b, err := BuildOptions{Sources: []string{chase}, Opt: "Os", Triples: []string{"x86_64-linux-gnu", "x86_64-linux-gnu"}}.normalize()
	if err != nil || b.optFlag != "-Os" || len(b.Triples) != 1 || b.Name != "chase" {
		t.Fatalf("normalize: %+v, %v", b, err)
	}
	if _, err := tc.Build(context.Background(), BuildOptions{Sources: []string{chase}, Triples: []string{"nosucharch-linux-gnu"}}); err != nil && !errors.Is(err, ErrUnsupportedTarget) && !errors.Is(err, ErrToolNotFound) {
		t.Fatalf("unknown arch: %v", err)
	}
}

func TestStripTargetAttributes(t *testing.T) {
	in := `define i64 @f() #0 {
  %s = getelementptr inbounds [9 x i8], [9 x i8]* @.str, i64 0, i64 0 ; "target-cpu"="x" in a comment stays
}
attributes #0 = { nounwind "frame-pointer"="none" "target-cpu"="x86-64" "target-features"="+cx8,+sse2" "tune-cpu"="generic" }
attributes #1 = { nounwind }
`
	out := string(StripTargetAttributes([]byte(in)))
	if strings.Contains(out, "x86-64") || strings.Contains(out, "+sse2") || strings.Contains(out, "tune-cpu") {
		t.Fatalf("not stripped:\n%s", out)
	}
	if !strings.Contains(out, `attributes #0 = { nounwind "frame-pointer"="none" }`) || !strings.Contains(out, `in a comment stays`) {
		t.Fatalf("stripped too much:\n%s", out)
	}
}

func TestBuildCancelled(t *testing.T) {
	needClang(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tc := New(Config{CacheDir: t.TempDir()})
	if _, err := tc.Build(ctx, BuildOptions{Sources: []string{"testdata/chase.c"}, Dir: root}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled build: %v", err)
	}
}
