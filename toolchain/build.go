package toolchain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bcship/bcship/bundle"
	"github.com/bcship/bcship/include"
)

// DefaultTriples are the triples Build compiles for when none are given.
func DefaultTriples() []string { return []string{"x86_64-linux-gnu", "aarch64-linux-gnu"} }

// BuildOptions says what Build compiles.
type BuildOptions struct {
	// Sources are the C files of one kernel. Several are compiled
	// separately and linked into one object per triple with ld.lld -r.
	Sources []string
	// Triples to compile for; default DefaultTriples. Each gets one object.
	Triples []string
	// Opt is the optimization level: "0", "1", "2", "3", "s" or "z",
	// optionally spelled "O2" or "-O2"; default "2".
	Opt string
	// Name of the kernel in the manifest; default the first source's base
	// name without extension.
	Name string
	// IncludeDirs are added with -I after the directory holding bcship.h.
	IncludeDirs []string
	// Defines are passed as -D (NAME or NAME=VALUE).
	Defines []string
	// NoBitcode leaves the LLVM bitcode out of the bundle.
	NoBitcode bool
	// BitcodeTriple is the triple the bitcode is generated for (clang
	// lowers the C ABI per target); default Triples[0].
	BitcodeTriple string
	// Dir is the directory relative source and include paths are resolved
	// in, and diagnostics are reported relative to; default the current
	// directory.
	Dir string
	// Stderr receives compiler warnings verbatim, each distinct one once.
	// Errors are returned as a *CompileError instead. Nil drops warnings.
	Stderr io.Writer
}

// build is BuildOptions after defaults and checks.
type build struct {
	BuildOptions
	optFlag string
}

func (o BuildOptions) normalize() (*build, error) {
	b := &build{BuildOptions: o}
	if len(o.Sources) == 0 {
		return nil, fmt.Errorf("%w: no source files", ErrBadOption)
	}
	for _, s := range o.Sources {
		p := s
		if !filepath.IsAbs(p) && o.Dir != "" {
			p = filepath.Join(o.Dir, p)
		}
		if st, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("%w: source: %v", ErrBadOption, err)
		} else if st.IsDir() {
			return nil, fmt.Errorf("%w: source %s is a directory", ErrBadOption, s)
		}
	}
	b.Triples = nil
	for _, t := range o.Triples {
		t = strings.TrimSpace(t)
		if !tripleRE.MatchString(t) {
			return nil, fmt.Errorf("%w: bad target triple %q", ErrBadOption, t)
		}
		if !slices.Contains(b.Triples, t) {
			b.Triples = append(b.Triples, t)
		}
	}
	if len(b.Triples) == 0 {
		b.Triples = DefaultTriples()
	}
	if b.BitcodeTriple == "" {
		b.BitcodeTriple = b.Triples[0]
	} else if !tripleRE.MatchString(b.BitcodeTriple) {
		return nil, fmt.Errorf("%w: bad bitcode triple %q", ErrBadOption, b.BitcodeTriple)
	}
	lvl := strings.TrimPrefix(strings.TrimPrefix(o.Opt, "-"), "O")
	switch lvl {
	case "":
		lvl = "2"
	case "0", "1", "2", "3", "s", "z":
	default:
		return nil, fmt.Errorf("%w: optimization level %q, want one of 0 1 2 3 s z", ErrBadOption, o.Opt)
	}
	b.optFlag = "-O" + lvl
	if b.Name == "" {
		base := filepath.Base(o.Sources[0])
		b.Name = badNameChars.ReplaceAllString(strings.TrimSuffix(base, filepath.Ext(base)), "_")
	}
	if !nameRE.MatchString(b.Name) {
		return nil, fmt.Errorf("%w: kernel name %q: want 1-128 of [A-Za-z0-9._+-]", ErrBadOption, b.Name)
	}
	return b, nil
}

// The bundle format's rules for names and triples; checked here so that a
// bad option fails before anything is compiled.
var (
	tripleRE     = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)
	nameRE       = regexp.MustCompile(`^[A-Za-z0-9._+-]{1,128}$`)
	badNameChars = regexp.MustCompile(`[^A-Za-z0-9._+-]`)
)

// KernelFlags are the clang flags every kernel object and the bitcode are
// built with, before -I and -D: freestanding code the loader can place
// anywhere (-fPIC: registered regions may be far from the code), with no
// host headers and no stack protector (there is no TLS canary to read).
func KernelFlags(triple, opt string) []string {
	return []string{"--target=" + triple, opt,
		"-ffreestanding", "-nostdlibinc", "-fno-stack-protector", "-fPIC"}
}

func (b *build) clangArgs(triple, incDir string) []string {
	args := KernelFlags(triple, b.optFlag)
	args = append(args, "-I", incDir)
	for _, d := range b.IncludeDirs {
		args = append(args, "-I", d)
	}
	for _, d := range b.Defines {
		args = append(args, "-D", d)
	}
	return args
}

// Build compiles one kernel for every triple into a bundle, with LLVM
// bitcode unless NoBitcode. Every object must have the same BC_ENTRY
// functions. The bundle's Created is $SOURCE_DATE_EPOCH when set, so builds
// can be reproducible; otherwise now.
//
// A compiler error is a *CompileError whose Stderr holds clang's
// diagnostics verbatim (file:line: error: …).
func (tc *Toolchain) Build(ctx context.Context, opts BuildOptions) (*bundle.Bundle, error) {
	b, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	created, err := tc.created()
	if err != nil {
		return nil, err
	}
	clang, err := tc.probe(ctx, Clang, 0)
	if err != nil {
		return nil, err
	}
	for _, t := range append(slices.Clone(b.Triples), b.BitcodeTriple) {
		if !clang.Supports(t) {
			return nil, &TargetError{Tool: Clang, Path: clang.Path, Triple: t, Targets: clang.Targets}
		}
	}
	var lld, link *ToolInfo
	if len(b.Sources) > 1 {
		if lld, err = tc.companion(ctx, LLD, clang.Version.Major); err != nil {
			return nil, fmt.Errorf("linking %d sources into one object needs ld.lld: %w", len(b.Sources), err)
		}
		if !b.NoBitcode {
			if link, err = tc.companion(ctx, LLVMLink, clang.Version.Major); err != nil {
				return nil, fmt.Errorf("bitcode from %d sources needs llvm-link (or build from one source, or without bitcode): %w", len(b.Sources), err)
			}
			if link.Version.Major < clang.Version.Major {
				return nil, &ToolError{Tool: LLVMLink, Package: "llvm", Tried: []string{link.Path},
					Err: fmt.Errorf("%w: %s is LLVM %d, older than clang's %d, and cannot read its bitcode",
						ErrToolNotFound, link.Path, link.Version.Major, clang.Version.Major)}
			}
		}
	}

	tmp, err := os.MkdirTemp("", "bcship-build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	// bcship.h comes from the binary, so builds work outside a checkout.
	incDir := filepath.Join(tmp, "include")
	if err := os.Mkdir(incDir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(incDir, include.HeaderName), include.Header(), 0o600); err != nil {
		return nil, err
	}

	// One job per triple, plus the bitcode; each job compiles every source.
	type result struct {
		out   []byte
		diags []string
		err   error
	}
	n := len(b.Triples)
	if !b.NoBitcode {
		n++
	}
	results := make([]result, n)
	jobCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			dir := filepath.Join(tmp, strconv.Itoa(i))
			r := &results[i]
			if r.err = os.Mkdir(dir, 0o700); r.err != nil {
				cancel()
				return
			}
			if i < len(b.Triples) {
				r.out, r.diags, r.err = tc.buildObject(jobCtx, b, clang, lld, b.Triples[i], incDir, dir)
			} else {
				r.out, r.diags, r.err = tc.buildBitcode(jobCtx, b, clang, link, incDir, dir)
			}
			if r.err != nil {
				cancel() // the other triples will fail the same way
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var shown []string
	for _, r := range results {
		for _, d := range r.diags {
			if d != "" && !slices.Contains(shown, d) && b.Stderr != nil {
				shown = append(shown, d)
				io.WriteString(b.Stderr, d)
			}
		}
	}
	// Report the first real failure in triple order; the others were
	// cancelled because of it.
	for _, r := range results {
		if r.err != nil && !errors.Is(r.err, context.Canceled) {
			return nil, r.err
		}
	}

	entries := map[string][]string{}
	for i, t := range b.Triples {
		if entries[t], err = Entries(results[i].out); err != nil {
			return nil, fmt.Errorf("toolchain: reading entries of the %s object: %w", t, err)
		}
	}
	first := entries[b.Triples[0]]
	for _, t := range b.Triples[1:] {
		if !slices.Equal(entries[t], first) {
			return nil, &EntriesError{Entries: entries}
		}
	}
	if len(first) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNoEntries, strings.Join(b.Sources, " "))
	}

	bnd := bundle.New(b.Name, first, clang.Version.Major)
	if !created.IsZero() {
		bnd.Created = created
	}
	for i, t := range b.Triples {
		bnd.AddObject(t, results[i].out)
	}
	if !b.NoBitcode {
		bnd.SetBitcode(results[n-1].out)
	}
	return bnd, nil
}

// buildObject compiles every source for triple in dir and links them into
// one relocatable object.
func (tc *Toolchain) buildObject(ctx context.Context, b *build, clang, lld *ToolInfo, triple, incDir, dir string) ([]byte, []string, error) {
	var objs, diags []string
	for i, src := range b.Sources {
		out := filepath.Join(dir, strconv.Itoa(i)+".o")
		args := append(b.clangArgs(triple, incDir), "-c", src, "-o", out)
		d, err := tc.run(ctx, clang, b.Dir, src, triple, args...)
		diags = append(diags, d)
		if err != nil {
			return nil, diags, err
		}
		objs = append(objs, out)
	}
	out := objs[0]
	if len(objs) > 1 {
		out = filepath.Join(dir, "kernel.o")
		args := append([]string{"-r", "-o", out}, objs...)
		d, err := tc.run(ctx, lld, b.Dir, strings.Join(b.Sources, " "), triple, args...)
		diags = append(diags, d)
		if err != nil {
			return nil, diags, err
		}
	}
	obj, err := os.ReadFile(out)
	return obj, diags, err
}

// buildBitcode compiles every source to LLVM IR for the bitcode triple,
// strips the per-function CPU attributes and links the result to bitcode.
func (tc *Toolchain) buildBitcode(ctx context.Context, b *build, clang, link *ToolInfo, incDir, dir string) ([]byte, []string, error) {
	var lls, diags []string
	for i, src := range b.Sources {
		ll := filepath.Join(dir, strconv.Itoa(i)+".ll")
		args := append(b.clangArgs(b.BitcodeTriple, incDir), "-S", "-emit-llvm", src, "-o", ll)
		d, err := tc.run(ctx, clang, b.Dir, src, b.BitcodeTriple, args...)
		diags = append(diags, d)
		if err != nil {
			return nil, diags, err
		}
		text, err := os.ReadFile(ll)
		if err != nil {
			return nil, diags, err
		}
		if err := os.WriteFile(ll, StripTargetAttributes(text), 0o600); err != nil {
			return nil, diags, err
		}
		lls = append(lls, ll)
	}
	out := filepath.Join(dir, "kernel.bc")
	var (
		d   string
		err error
	)
	input := strings.Join(b.Sources, " ")
	if len(lls) == 1 {
		// clang assembles IR to bitcode as llvm-as would, without adding
		// the attributes back.
		d, err = tc.run(ctx, clang, b.Dir, input, b.BitcodeTriple,
			"--target="+b.BitcodeTriple, "-c", "-emit-llvm", lls[0], "-o", out)
	} else {
		d, err = tc.run(ctx, link, b.Dir, input, b.BitcodeTriple, append([]string{"-o", out}, lls...)...)
	}
	diags = append(diags, d)
	if err != nil {
		return nil, diags, err
	}
	bc, err := os.ReadFile(out)
	return bc, diags, err
}

// targetAttrRE matches the function attributes that pin code to a CPU.
var targetAttrRE = regexp.MustCompile(` "(?:target-cpu|target-features|tune-cpu)"="[^"]*"`)

// StripTargetAttributes removes "target-cpu", "target-features" and
// "tune-cpu" from the attribute groups of textual LLVM IR. clang puts them
// on every function, and llc lets them win over its -mcpu, so without this
// -mcpu=native at the target would change nothing. Quotes inside IR strings
// are escaped (\22), so only attribute syntax can match.
func StripTargetAttributes(ll []byte) []byte {
	lines := strings.SplitAfter(string(ll), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "attributes #") {
			lines[i] = targetAttrRE.ReplaceAllString(l, "")
		}
	}
	return []byte(strings.Join(lines, ""))
}

// created is the bundle creation time from $SOURCE_DATE_EPOCH, or zero.
func (tc *Toolchain) created() (time.Time, error) {
	s := tc.cfg.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return time.Time{}, nil
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil || sec < 0 {
		return time.Time{}, fmt.Errorf("%w: SOURCE_DATE_EPOCH=%q is not a Unix time in seconds", ErrBadOption, s)
	}
	return time.Unix(sec, 0).UTC(), nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
