package main

import (
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/bcship/bcship/bundle"
	"github.com/bcship/bcship/internal/chase"
	"github.com/bcship/bcship/kernels"
	"github.com/bcship/bcship/loader"
	"github.com/bcship/bcship/toolchain"
)

// buildBinary builds bcship for this GOARCH into dir.
func buildBinary(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "bcship")
	c := exec.Command("go", "build", "-o", bin, ".")
	c.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := c.CombinedOutput(); err != nil {
		t.Skipf("SKIP (loud): cannot build the bcship binary for the process tests: %v\n%s", err, out)
	}
	return bin
}

func run(t *testing.T, dir, bin string, args ...string) string {
	t.Helper()
	c := exec.Command(bin, args...)
	c.Dir = dir
	out, err := c.CombinedOutput()
	if err != nil {
		var ee *exec.Error
		if errors.As(err, &ee) || errors.Is(err, syscall.ENOEXEC) {
			t.Skipf("SKIP (loud): cannot run %s here (%v): under qemu-user without binfmt_misc a process cannot exec another emulated binary", bin, err)
		}
		t.Fatalf("bcship %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestClusterCLI drives the CLI end to end: cluster up with three signed-
// code nodes, a raw object shipped with "bcship FILE --to NODE", nodes,
// cluster down.
func TestClusterCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	ids := []uint32{1, 2, 3}
	l := chase.New(ids, 500, 3)
	for _, id := range ids {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("chase%d.bin", id)), l.Regions[id], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	obj, err := kernels.Object("chase", loader.HostMachine())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "chase.o"), obj, 0o644); err != nil {
		t.Fatal(err)
	}
	out := run(t, dir, bin, "cluster", "up", "-n", "3", "--region", "chase=chase%d.bin")
	t.Logf("cluster up:\n%s", out)
	t.Cleanup(func() { exec.Command(bin, "cluster", "down", "--cluster", filepath.Join(dir, "cluster.toml")).Run() })

	links := 40
	want := l.Expect(links)
	arg := hex.EncodeToString(chase.Walk{Key: l.Head, Remaining: uint64(links)}.Bytes())
	to := fmt.Sprintf("node%d", l.Head>>32)
	for i := range 2 {
		out = run(t, dir, bin, "chase.o", "--to", to, "--arg-hex", arg, "--as", "u64", "--ttl", "255")
		t.Logf("run %d:\n%s", i+1, out)
		wantLine := fmt.Sprintf("as u64: %d 0 %d %d", want.Key, want.Hops, want.Sum)
		if !strings.Contains(out, wantLine) {
			t.Fatalf("output lacks %q", wantLine)
		}
	}
	out = run(t, dir, bin, "nodes")
	t.Logf("nodes:\n%s", out)
	for _, id := range ids {
		if !strings.Contains(out, fmt.Sprintf("node%d", id)) || strings.Contains(out, "down:") {
			t.Fatalf("nodes output:\n%s", out)
		}
	}
	out = run(t, dir, bin, "cluster", "down")
	t.Logf("cluster down:\n%s", out)
	if strings.Count(out, "stopped") != 3 {
		t.Fatalf("cluster down did not stop 3 nodes:\n%s", out)
	}
}

// TestMixedCluster runs one amd64 and one arm64 node (under
// qemu-aarch64-static): the same bundle, carrying both prebuilt objects,
// runs a walk that crosses between them.
func TestMixedCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds an arm64 binary and starts processes")
	}
	if runtime.GOARCH != "amd64" {
		t.Skip("SKIP (loud): the mixed cluster test runs on amd64 hosts (arm64 nodes under qemu)")
	}
	if _, err := exec.LookPath("qemu-aarch64-static"); err != nil {
		t.Skipf("SKIP (loud): no qemu-aarch64-static (apt-get install qemu-user-static): %v", err)
	}
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	arm := filepath.Join(dir, "bcship-arm64")
	c := exec.Command("go", "build", "-o", arm, ".")
	c.Env = append(os.Environ(), "CGO_ENABLED=0", "GOARCH=arm64")
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("building for arm64: %v\n%s", err, out)
	}
	code := bundle.New("chase", []string{"chase"}, 0)
	for _, m := range []elf.Machine{elf.EM_X86_64, elf.EM_AARCH64} {
		obj, err := kernels.Object("chase", m)
		if err != nil {
			t.Fatal(err)
		}
		triple, _ := toolchain.TripleFor(m)
		code.AddObject(triple, obj)
	}
	data, err := code.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "chase.bcb"), data, 0o644)
	ids := []uint32{1, 2}
	l := chase.New(ids, 200, 6)
	for _, id := range ids {
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("chase%d.bin", id)), l.Regions[id], 0o644)
	}
	out := run(t, dir, bin, "cluster", "up", "-n", "2", "--arm64", "--arm64-binary", arm, "--region", "chase=chase%d.bin")
	t.Logf("cluster up:\n%s", out)
	t.Cleanup(func() { exec.Command(bin, "cluster", "down", "--cluster", filepath.Join(dir, "cluster.toml")).Run() })
	out = run(t, dir, bin, "nodes")
	t.Logf("nodes:\n%s", out)
	if !strings.Contains(out, "aarch64-linux-gnu") || !strings.Contains(out, "x86_64-linux-gnu") {
		t.Fatalf("not a mixed cluster:\n%s", out)
	}
	links := 60
	want := l.Expect(links)
	if want.Hops < 10 {
		t.Fatalf("walk crosses only %d times", want.Hops)
	}
	arg := hex.EncodeToString(chase.Walk{Key: l.Head, Remaining: uint64(links)}.Bytes())
	out = run(t, dir, bin, "chase.bcb", "--to", fmt.Sprintf("%d", l.Head>>32), "--arg-hex", arg, "--as", "u64", "--ttl", "255", "--timeout", "20s")
	t.Logf("walk:\n%s", out)
	if wantLine := fmt.Sprintf("as u64: %d 0 %d %d", want.Key, want.Hops, want.Sum); !strings.Contains(out, wantLine) {
		t.Fatalf("output lacks %q", wantLine)
	}
}
