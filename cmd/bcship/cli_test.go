package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bcship/bcship/bundle"
	"github.com/bcship/bcship/toolchain"
)

// bcship runs the CLI in process and returns its output and error.
func bcship(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRoot(slog.New(slog.NewTextHandler(io.Discard, nil)))
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := bcship(t, args...)
	if err != nil {
		t.Fatalf("bcship %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// TestBuildInspectSignVerify is the bundle workflow end to end.
func TestBuildInspectSignVerify(t *testing.T) {
	if _, err := toolchain.Find(context.Background()); err != nil {
		t.Skipf("SKIP (loud): %v", err)
	}
	// Keep the bitcode cache out of the user's home.
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	dir := t.TempDir()
	bcb := filepath.Join(dir, "c.bcb")

	out := mustRun(t, "build", "../../testdata/chase.c", "-t", "x86_64-linux-gnu,aarch64-linux-gnu", "-O2", "-o", bcb)
	if !strings.Contains(out, "wrote "+bcb) {
		t.Fatalf("build said:\n%s", out)
	}

	out = mustRun(t, "inspect", bcb)
	t.Logf("inspect:\n%s", out)
	for _, want := range []string{"bcship bundle, format 1", "name:       chase", "entries:    [chase]",
		"objects:    2", "signer:     unsigned", "object x86_64-linux-gnu:", "object aarch64-linux-gnu:", "bitcode compiled for "} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q", want)
		}
	}
	if n := strings.Count(out, "loadable:   yes"); n != 3 || strings.Contains(out, "loadable:   no") {
		t.Errorf("inspect: %d loadable, want 2 objects and the bitcode", n)
	}
	if n := strings.Count(out, "  bitcode:    "); n != 1 {
		t.Errorf("inspect shows %d bitcode blobs, want 1", n)
	}

	keys, other := filepath.Join(dir, "keys"), filepath.Join(dir, "other")
	out = mustRun(t, "keygen", "--out", keys, "--name", "alice")
	if !strings.Contains(out, "alice.pub") {
		t.Fatalf("keygen said:\n%s", out)
	}
	mustRun(t, "keygen", "--out", other)
	if _, err := bcship(t, "keygen", "--out", keys, "--name", "alice"); !errors.Is(err, os.ErrExist) {
		t.Fatalf("keygen overwrote a key: %v", err)
	}

	if _, err := bcship(t, "verify", bcb, "--trust", keys); !errors.Is(err, bundle.ErrUnsigned) {
		t.Fatalf("verify of an unsigned bundle: %v", err)
	}
	hashBefore := mustRun(t, "inspect", "--no-compile", bcb)
	mustRun(t, "sign", bcb, "--key", filepath.Join(keys, "alice.key"))
	out = mustRun(t, "verify", bcb, "--trust", keys)
	if !strings.Contains(out, "OK") {
		t.Fatalf("verify said:\n%s", out)
	}
	if after := mustRun(t, "inspect", "--no-compile", bcb); !strings.Contains(after, "signer:     ed25519 ") ||
		codeHash(hashBefore) != codeHash(after) {
		t.Fatalf("signing changed the code hash or shows no signer:\n%s", after)
	}
	_, err := bcship(t, "verify", bcb, "--trust", other)
	if !errors.Is(err, bundle.ErrUntrusted) || !strings.Contains(err.Error(), "not in "+other) {
		t.Fatalf("verify against another key: %v", err)
	}

	data, _ := os.ReadFile(bcb)
	data[len(data)/2] ^= 0x01
	os.WriteFile(bcb, data, 0o644)
	_, err = bcship(t, "verify", bcb, "--trust", keys)
	if err == nil || !errors.Is(err, bundle.ErrCorrupt) || !strings.Contains(err.Error(), "damaged or was modified") {
		t.Fatalf("verify of a flipped byte: %v", err)
	}
	t.Logf("flipped byte: %v", err)
}

func codeHash(inspect string) string {
	_, rest, _ := strings.Cut(inspect, "code hash:  ")
	h, _, _ := strings.Cut(rest, "\n")
	return h
}

func TestInspectRawObject(t *testing.T) {
	out := mustRun(t, "inspect", "../../kernels/chase.aarch64.o")
	for _, want := range []string{"EM_AARCH64", "loadable:   yes", "ships as:   one-triple bundle raw-", "for aarch64-linux-gnu"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
	if _, err := bcship(t, "sign", "../../kernels/chase.aarch64.o", "--key", "x.key"); err == nil {
		t.Error("signed a raw object")
	}
}

func TestBuildCompileError(t *testing.T) {
	if _, err := toolchain.Find(context.Background()); err != nil {
		t.Skipf("SKIP (loud): %v", err)
	}
	src := filepath.Join(t.TempDir(), "bad.c")
	os.WriteFile(src, []byte("#include \"bcship.h\"\nBC_ENTRY int64_t f(bc_ctx *c, const void *a, uint64_t n) { return x; }\n"), 0o644)
	_, err := bcship(t, "build", src, "-o", filepath.Join(t.TempDir(), "bad.bcb"))
	if err == nil || !strings.Contains(err.Error(), src+":2:") {
		t.Fatalf("diagnostics lost: %v", err)
	}
}

func TestHelp(t *testing.T) {
	for _, verb := range []string{"build", "keygen", "sign", "verify", "inspect"} {
		out := mustRun(t, verb, "--help")
		if !strings.Contains(out, "Usage:") || len(out) < 400 {
			t.Errorf("%s --help is thin:\n%s", verb, out)
		}
	}
}
