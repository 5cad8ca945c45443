package toolchain

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Stats counts CompileBitcode's work, so callers (and tests) can see
// whether the cache answered.
type Stats struct {
	LLCRuns   int64 // llc invocations that produced an object
	CacheHits int64 // compiles answered from the disk cache
}

// Stats returns the counters of this Toolchain.
func (tc *Toolchain) Stats() Stats {
	return Stats{LLCRuns: tc.llcRuns.Load(), CacheHits: tc.cacheHits.Load()}
}

// isBitcode reports whether bc starts with the bitcode magic, raw or in
// the wrapper Darwin tools use.
func isBitcode(bc []byte) bool {
	return bytes.HasPrefix(bc, []byte("BC\xc0\xde")) || bytes.HasPrefix(bc, []byte("\xde\xc0\x17\x0b"))
}

// CompileBitcode compiles a bundle's bitcode into a relocatable object for
// triple with the local llc, tuned for this machine (-mcpu=native) when
// triple is llc's own architecture and generic otherwise. producerLLVM is
// the bundle's LLVM version: bitcode is not readable by an older LLVM, so
// an llc older than the producer, an llc without the target, or no llc at
// all yields a *NeedCrossCompileError (errors.Is ErrNeedCrossCompile).
//
// Results are cached on disk under the cache directory, keyed by the
// bitcode's sha256, the triple, the CPU and llc's version banner; Stats
// tells hits from runs.
func (tc *Toolchain) CompileBitcode(ctx context.Context, bc []byte, triple string, producerLLVM int) ([]byte, error) {
	if !isBitcode(bc) {
		return nil, ErrNotBitcode
	}
	if !tripleRE.MatchString(triple) {
		return nil, fmt.Errorf("%w: bad target triple %q", ErrBadOption, triple)
	}
	llc, err := tc.probe(ctx, LLC, 0)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &NeedCrossCompileError{Triple: triple, Producer: producerLLVM, Reason: "no llc on this node", Err: err}
	}
	switch {
	case producerLLVM <= 0:
		return nil, &NeedCrossCompileError{Triple: triple, LLC: llc.Version.Major,
			Reason: "the bitcode's producer LLVM version is unknown"}
	case llc.Version.Major < producerLLVM:
		return nil, &NeedCrossCompileError{Triple: triple, Producer: producerLLVM, LLC: llc.Version.Major,
			Reason: fmt.Sprintf("bitcode from LLVM %d, but %s is LLVM %d", producerLLVM, llc.Path, llc.Version.Major)}
	case !llc.Supports(triple):
		return nil, &NeedCrossCompileError{Triple: triple, Producer: producerLLVM, LLC: llc.Version.Major,
			Reason: fmt.Sprintf("%s has no backend for it", llc.Path),
			Err:    &TargetError{Tool: LLC, Path: llc.Path, Triple: triple, Targets: llc.Targets}}
	}
	// -mcpu=native describes llc's host, which is only the code's host
	// when the architectures agree (not under qemu-user, nor when
	// compiling for another node). The cache key names the CPU, not
	// "native", since a cache directory may be shared between machines.
	cpu, cpuArgs := "generic", []string(nil)
	if sameArch(triple, llc.DefaultTriple) && llc.HostCPU != "" {
		cpu, cpuArgs = llc.HostCPU, []string{"-mcpu=native"}
	}
	sum := sha256.Sum256(bc)
	key := sha256.Sum256(fmt.Appendf(nil, "bitcode %x\ntriple %s\ncpu %s\nllc %s\n", sum, triple, cpu, llc.Banner))
	dir, dirErr := tc.cacheDir()
	var cached string
	if dirErr == nil {
		cached = filepath.Join(dir, "llc", hex.EncodeToString(key[:])+".o")
		if obj, err := os.ReadFile(cached); err == nil && len(obj) > 0 {
			tc.cacheHits.Add(1)
			return obj, nil
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			tc.cfg.Logger.Warn("bitcode cache unreadable", "path", cached, "err", err)
		}
	} else {
		tc.cfg.Logger.Warn("bitcode cache disabled", "err", dirErr)
	}

	tmp, err := os.MkdirTemp("", "bcship-llc-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	in, out := filepath.Join(tmp, "kernel.bc"), filepath.Join(tmp, "kernel.o")
	if err := os.WriteFile(in, bc, 0o600); err != nil {
		return nil, err
	}
	args := append([]string{"-filetype=obj", "-relocation-model=pic", "-mtriple=" + triple}, cpuArgs...)
	args = append(args, "-o", out, in)
	if _, err := tc.run(ctx, llc, "", "bitcode "+hex.EncodeToString(sum[:6]), triple, args...); err != nil {
		return nil, err
	}
	tc.llcRuns.Add(1)
	obj, err := os.ReadFile(out)
	if err != nil {
		return nil, err
	}
	if cached != "" {
		if err := writeAtomic(cached, obj); err != nil {
			tc.cfg.Logger.Warn("bitcode cache not written", "path", cached, "err", err)
		}
	}
	return obj, nil
}

// writeAtomic writes data to path through a temporary file in the same
// directory and a rename, so readers (other processes sharing the cache)
// see the old file, no file, or all of the new one.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // no-op after the rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// LLVMVersion is the major version of the llc CompileBitcode uses, or an
// error when there is none. With it a *Toolchain is a bcship.Compiler.
func (tc *Toolchain) LLVMVersion(ctx context.Context) (int, error) {
	llc, err := tc.probe(ctx, LLC, 0)
	if err != nil {
		return 0, err
	}
	return llc.Version.Major, nil
}
