package toolchain

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/bcship/bcship/bundle"
	"github.com/bcship/bcship/internal/hostrt"
	"github.com/bcship/bcship/loader"
)

// buildChase builds testdata/chase.c with tc for the default triples.
func buildChase(t *testing.T, tc *Toolchain) *bundle.Bundle {
	t.Helper()
	b, err := tc.Build(context.Background(), BuildOptions{Sources: []string{"testdata/chase.c"}, Dir: root})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// needLLC skips loudly when llc is missing.
func needLLC(t *testing.T, tc *Toolchain) *ToolInfo {
	t.Helper()
	llc, err := tc.Tool(context.Background(), LLC)
	if errors.Is(err, ErrToolNotFound) {
		t.Skipf("SKIP (loud): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return llc
}

// TestCompileBitcode compiles the bundle's bitcode with the local llc for
// every default triple, checks each links, runs the host's, and checks
// that the second compile is a cache hit that runs no llc.
func TestCompileBitcode(t *testing.T) {
	tc := needClang(t)
	llc := needLLC(t, tc)
	b := buildChase(t, tc)
	bc, _ := b.Bitcode()
	if llc.Version.Major < b.LLVMVersion {
		t.Skipf("SKIP (loud): llc %v is older than clang %d; install matching clang and llvm", llc.Version, b.LLVMVersion)
	}
	tab, _ := hostrt.Table()
	host, _ := HostTriple()
	for _, triple := range DefaultTriples() {
		var runs countingRunner
		cache := t.TempDir()
		tc := New(Config{CacheDir: cache, Run: runs.run})
		obj, err := tc.CompileBitcode(context.Background(), bc, triple, b.LLVMVersion)
		if err != nil {
			t.Fatalf("%s: %v", triple, err)
		}
		if tr, err := objectTriple(obj); err != nil || tr != triple {
			t.Fatalf("%s: compiled object is for %q (%v)", triple, tr, err)
		}
		if err := loader.Check(obj, tab); err != nil {
			t.Fatalf("%s: compiled object does not link: %v", triple, err)
		}
		if es, _ := Entries(obj); !slices.Equal(es, b.Entries) {
			t.Fatalf("%s: entries %v, want %v: .text.bcentry lost in bitcode", triple, es, b.Entries)
		}
		if triple == host {
			runChase(t, obj)
		}
		if got := runs.llc.Load(); got != 1 {
			t.Fatalf("%s: llc ran %d times on first compile", triple, got)
		}
		// -mcpu=native only where llc's host is the code's architecture
		// (under qemu-user it is not, whatever GOARCH says).
		if native, want := slices.Contains(*runs.args.Load(), "-mcpu=native"), sameArch(triple, llc.DefaultTriple); native != want {
			t.Fatalf("%s: llc args %v; -mcpu=native should be used iff llc runs on %s", triple, *runs.args.Load(), triple)
		}

		// Second compile, same Toolchain: from the cache, no llc.
		again, err := tc.CompileBitcode(context.Background(), bc, triple, b.LLVMVersion)
		if err != nil || !bytes.Equal(again, obj) {
			t.Fatalf("%s: cached compile: %v (same bytes: %v)", triple, err, bytes.Equal(again, obj))
		}
		if got, st := runs.llc.Load(), tc.Stats(); got != 1 || st != (Stats{LLCRuns: 1, CacheHits: 1}) {
			t.Fatalf("%s: after second compile llc ran %d times, stats %+v; want a cache hit", triple, got, st)
		}
		// A new Toolchain (another process) finds it on disk too.
		var runs2 countingRunner
		tc2 := New(Config{CacheDir: cache, Run: runs2.run})
		if _, err := tc2.CompileBitcode(context.Background(), bc, triple, b.LLVMVersion); err != nil {
			t.Fatal(err)
		}
		if runs2.llc.Load() != 0 || tc2.Stats().CacheHits != 1 {
			t.Fatalf("%s: fresh Toolchain ran llc %d times, stats %+v", triple, runs2.llc.Load(), tc2.Stats())
		}
		// Atomic writes leave no temporary files behind.
		files, _ := filepath.Glob(filepath.Join(cache, "llc", "*"))
		if len(files) != 1 || filepath.Ext(files[0]) != ".o" {
			t.Fatalf("%s: cache holds %v, want one object", triple, files)
		}
	}
}

// TestCacheDirDefault follows XDG_CACHE_HOME, then ~/.cache.
func TestCacheDirDefault(t *testing.T) {
	env := map[string]string{"HOME": "/home/u"}
	tc := New(Config{Getenv: func(k string) string { return env[k] }})
	if d, _ := tc.cacheDir(); d != "/home/u/.cache/bcship" {
		t.Errorf("cache dir %q", d)
	}
	env["XDG_CACHE_HOME"] = "/xdg"
	if d, _ := tc.cacheDir(); d != "/xdg/bcship" {
		t.Errorf("cache dir %q", d)
	}
	env["XDG_CACHE_HOME"], env["HOME"] = "relative", ""
	if _, err := tc.cacheDir(); err == nil {
		t.Error("relative XDG_CACHE_HOME and no HOME accepted")
	}
}

// TestNeedCrossCompile: bitcode newer than llc, a triple llc lacks, and no
// llc at all each say the origin must cross-compile, without running llc.
func TestNeedCrossCompile(t *testing.T) {
	tc := needClang(t)
	llc := needLLC(t, tc)
	b := buildChase(t, tc)
	bc, _ := b.Bitcode()
	host, _ := HostTriple()

	var runs countingRunner
	tc = New(Config{CacheDir: t.TempDir(), Run: runs.run})
	_, err := tc.CompileBitcode(context.Background(), bc, host, llc.Version.Major+1)
	var nce *NeedCrossCompileError
	if !errors.As(err, &nce) || !errors.Is(err, ErrNeedCrossCompile) || nce.LLC != llc.Version.Major {
		t.Fatalf("newer producer: got %v, want ErrNeedCrossCompile", err)
	}
	t.Logf("newer producer: %v", err)
	const missing = "loongarch64-linux-gnu" // not in LLVM before 16
	if llc.Supports(missing) {
		t.Logf("NOTE: %s has a %s backend; not testing a missing target", llc.Path, missing)
	} else {
		_, err = tc.CompileBitcode(context.Background(), bc, missing, b.LLVMVersion)
		if !errors.Is(err, ErrNeedCrossCompile) || !errors.Is(err, ErrUnsupportedTarget) {
			t.Fatalf("missing target: got %v, want ErrNeedCrossCompile wrapping ErrUnsupportedTarget", err)
		}
	}
	if runs.llc.Load() != 0 {
		t.Fatalf("llc ran %d times; the version and target checks should come first", runs.llc.Load())
	}
	cfg, _ := fakeTools(nil)
	_, err = New(cfg).CompileBitcode(context.Background(), bc, host, b.LLVMVersion)
	if !errors.Is(err, ErrNeedCrossCompile) || !errors.Is(err, ErrToolNotFound) {
		t.Fatalf("no llc: got %v, want ErrNeedCrossCompile and ErrToolNotFound", err)
	}
	if _, err := tc.CompileBitcode(context.Background(), []byte("\x7fELF not bitcode"), host, 14); !errors.Is(err, ErrNotBitcode) {
		t.Fatalf("not bitcode: %v", err)
	}
}

// TestNewerProducer builds with a second, newer clang (clang-19 when
// installed) and checks the older llc refuses its bitcode while llc of the
// same version compiles it.
func TestNewerProducer(t *testing.T) {
	tc := needClang(t)
	llc := needLLC(t, tc)
	newer := ""
	for _, v := range versions() {
		if v <= llc.Version.Major {
			break
		}
		if _, err := exec.LookPath("clang-" + strconv.Itoa(v)); err == nil {
			if _, err := exec.LookPath("llc-" + strconv.Itoa(v)); err == nil {
				newer = strconv.Itoa(v)
				break
			}
		}
	}
	if newer == "" {
		t.Skipf("SKIP (loud): no clang-N/llc-N newer than llc %v installed (apt-get install clang-19 llvm-19); "+
			"TestNeedCrossCompile covers the check with a declared version only", llc.Version)
	}
	env := func(k string) string {
		switch k {
		case "BCSHIP_CLANG":
			return "clang-" + newer
		case "BCSHIP_LLC":
			return "llc-" + newer
		}
		return os.Getenv(k)
	}
	tcNew := New(Config{Getenv: env, CacheDir: t.TempDir()})
	b := buildChase(t, tcNew)
	if strconv.Itoa(b.LLVMVersion) != newer {
		t.Fatalf("bundle producer LLVM %d, want %s", b.LLVMVersion, newer)
	}
	bc, _ := b.Bitcode()
	host, _ := HostTriple()

	// The old llc refuses by version, without trying …
	tcOld := New(Config{CacheDir: t.TempDir()})
	if _, err := tcOld.CompileBitcode(context.Background(), bc, host, b.LLVMVersion); !errors.Is(err, ErrNeedCrossCompile) {
		t.Fatalf("llc %v on LLVM %d bitcode: got %v, want ErrNeedCrossCompile", llc.Version, b.LLVMVersion, err)
	} else {
		t.Logf("llc %v: %v", llc.Version, err)
	}
	// … and trying confirms why the check exists.
	in := filepath.Join(t.TempDir(), "k.bc")
	os.WriteFile(in, bc, 0o600)
	if out, err := exec.Command(llc.Path, "-filetype=obj", "-o", os.DevNull, in).CombinedOutput(); err == nil {
		t.Logf("NOTE: llc %v happened to read LLVM %s bitcode", llc.Version, newer)
	} else {
		t.Logf("llc %v on LLVM %s bitcode fails as expected: %s", llc.Version, newer, bytes.TrimSpace(out))
	}
	// The matching llc compiles it, and the result runs.
	obj, err := tcNew.CompileBitcode(context.Background(), bc, host, b.LLVMVersion)
	if err != nil {
		t.Fatal(err)
	}
	runChase(t, obj)
	// Objects from the newer clang run too.
	runChase(t, hostObject(t, b))
}
