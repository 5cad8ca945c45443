package testobj_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/bcship/bcship/internal/testobj"
)

const root = "../.."

// TestCommittedObjectsFresh rebuilds every committed object with the
// installed clang and compares bytes, so a change to a .c file or a flag
// cannot land without `make testdata`. It needs the clang that built them
// (testdata/CLANG_VERSION); with another one the bytes legitimately differ.
func TestCommittedObjectsFresh(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping rebuild of the test objects")
	}
	clang, err := testobj.FindClang()
	if err != nil {
		t.Skip("SKIP (loud): clang is not installed, cannot check testdata/*.o are fresh; `make deps` installs it")
	}
	ctx := context.Background()
	ver, err := testobj.Version(ctx, clang)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(root, testobj.VersionFile))
	if err != nil {
		t.Fatal(err)
	}
	if !sameClang(t, ver) {
		t.Skipf("SKIP (loud): objects were built by %q, this machine has %q; byte comparison is meaningless", strings.TrimSpace(string(want)), ver)
	}
	dir := t.TempDir()
	vs := testobj.Matrix()
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.NumCPU())
	for _, v := range vs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out := filepath.Join(dir, v.Name())
			if err := testobj.Build(ctx, clang, root, v, out); err != nil {
				t.Error(err)
				return
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Error(err)
				return
			}
			committed, err := os.ReadFile(filepath.Join(root, "testdata", v.Name()))
			if err != nil {
				t.Errorf("%s is not committed: run make testdata", v.Name())
				return
			}
			if !bytes.Equal(got, committed) {
				t.Errorf("testdata/%s is stale: run make testdata", v.Name())
			}
		}()
	}
	wg.Wait()
	// No object may be committed that the matrix does not produce.
	known := map[string]bool{}
	for _, v := range vs {
		known[v.Name()] = true
	}
	objs, _ := filepath.Glob(filepath.Join(root, "testdata", "*.o"))
	for _, o := range objs {
		if !known[filepath.Base(o)] {
			t.Errorf("testdata/%s is not in the matrix: remove it or run make testdata", filepath.Base(o))
		}
	}
}

// TestRuntimeFresh does the same for the embedded host runtime objects
// and the prebuilt kernels.
func TestRuntimeFresh(t *testing.T) {
	clang, err := testobj.FindClang()
	if err != nil {
		t.Skip("SKIP (loud): clang is not installed, cannot check internal/hostrt objects are fresh")
	}
	if ver, err := testobj.Version(context.Background(), clang); err != nil || !sameClang(t, ver) {
		t.Skipf("SKIP (loud): clang %q did not build the committed objects", ver)
	}
	dir := t.TempDir()
	for _, a := range testobj.Arches {
		out := filepath.Join(dir, a.Name+".o")
		cmd := exec.Command(clang, testobj.RuntimeArgs(a.Triple, out)...)
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v\n%s", err, b)
		}
		sameBytes(t, out, filepath.Join("internal", "hostrt", "rt."+a.Name+".o"))
		for _, k := range testobj.Kernels {
			out := filepath.Join(dir, k+"."+a.Name+".o")
			cmd := exec.Command(clang, testobj.KernelArgs(k, a.Triple, out)...)
			cmd.Dir = root
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%v\n%s", err, b)
			}
			sameBytes(t, out, filepath.Join("kernels", k+"."+a.Name+".o"))
		}
	}
}

func sameClang(t *testing.T, ver string) bool {
	want, err := os.ReadFile(filepath.Join(root, testobj.VersionFile))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(want)) == ver
}

// sameBytes fails the test when the fresh build differs from the committed
// file (a path relative to the repository root).
func sameBytes(t *testing.T, fresh, committed string) {
	t.Helper()
	got, err := os.ReadFile(fresh)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(root, committed))
	if err != nil {
		t.Fatalf("%s is not committed: run make testdata", committed)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is stale: run make testdata", committed)
	}
}
