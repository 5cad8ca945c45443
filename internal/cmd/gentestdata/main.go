// Command gentestdata rebuilds the committed test objects (testdata/*.o)
// and the embedded host runtime objects with clang. `make testdata` runs it
// from the repository root.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/bcship/bcship/internal/testobj"
)

func main() {
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "gentestdata:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	clang, err := testobj.FindClang()
	if err != nil {
		return fmt.Errorf("clang not found (apt-get install clang lld llvm): %w", err)
	}
	ver, err := testobj.Version(ctx, clang)
	if err != nil {
		return err
	}
	old, _ := filepath.Glob("testdata/*.o")
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	vs := testobj.Matrix()
	errs := make(chan error, len(vs))
	sem := make(chan struct{}, runtime.NumCPU())
	var wg sync.WaitGroup
	for _, v := range vs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs <- testobj.Build(ctx, clang, ".", v, filepath.Join("testdata", v.Name()))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	for _, a := range testobj.Arches {
		out := filepath.Join("internal", "hostrt", "rt."+a.Name+".o")
		cmd := exec.CommandContext(ctx, clang, testobj.RuntimeArgs(a.Triple, out)...)
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("building %s: %w", out, err)
		}
	}
	for _, k := range testobj.Kernels {
		for _, a := range testobj.Arches {
			out := filepath.Join("kernels", k+"."+a.Name+".o")
			cmd := exec.CommandContext(ctx, clang, testobj.KernelArgs(k, a.Triple, out)...)
			cmd.Stderr = os.Stderr
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("building %s: %w", out, err)
			}
		}
	}
	if err := os.WriteFile(testobj.VersionFile, []byte(ver+"\n"), 0o644); err != nil {
		return err
	}
	fmt.Printf("built %d test objects and %d runtime objects with %s\n", len(vs), len(testobj.Arches), ver)
	return nil
}
