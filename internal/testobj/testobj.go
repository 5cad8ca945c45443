// Package testobj defines the matrix of test objects committed under
// testdata/ and how clang builds each one. `make testdata` and the freshness
// test share it, so the two can never disagree about a flag.
package testobj

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Arches are the target triples test objects are built for, by their
// short names.
var Arches = []struct{ Name, Triple string }{
	{"x86_64", "x86_64-linux-gnu"},
	{"aarch64", "aarch64-linux-gnu"},
}

// Variant is one compilation of one source file.
type Variant struct {
	Src   string // base name of the C file in testdata, without .c
	Arch  string // "x86_64" or "aarch64"
	Opt   string // "O0" … "O3", "Os"
	PIC   bool
	Model string // code model: small, medium, large (x86_64); small, tiny, large (aarch64)
	Extra string // "", "g", "sections", "unwind" or "pie"
}

// Name is the object's file name: src.arch.opt.pic|nopic.model[.extra].o
func (v Variant) Name() string {
	pic := "nopic"
	if v.PIC {
		pic = "pic"
	}
	n := strings.Join([]string{v.Src, v.Arch, v.Opt, pic, v.Model}, ".")
	if v.Extra != "" {
		n += "." + v.Extra
	}
	return n + ".o"
}

// Triple is the variant's target triple.
func (v Variant) Triple() string {
	for _, a := range Arches {
		if a.Name == v.Arch {
			return a.Triple
		}
	}
	panic("BUG: unknown arch " + v.Arch)
}

// CommonFlags are the flags every kernel is built with: freestanding, no
// host headers but the shim's and bcship.h, and no stack protector (there
// is no TLS canary to read). Paths are relative to the repository root.
var CommonFlags = []string{
	"-ffreestanding", "-nostdlibinc", "-fno-stack-protector",
	"-Iinclude", "-Itestdata/shim", "-idirafter", "/usr/include",
	// Debug info must not record the build directory, or objects built
	// in another checkout would differ.
	"-fdebug-compilation-dir=.",
}

// Args are clang's arguments for building v into out, run from the
// repository root.
func (v Variant) Args(out string) []string {
	args := []string{"--target=" + v.Triple(), "-" + v.Opt}
	args = append(args, CommonFlags...)
	if v.PIC {
		args = append(args, "-fPIC")
	} else {
		args = append(args, "-fno-pic")
	}
	if v.Model != "small" {
		args = append(args, "-mcmodel="+v.Model)
	}
	switch v.Extra {
	case "g":
		args = append(args, "-g")
	case "sections":
		args = append(args, "-ffunction-sections", "-fdata-sections")
	case "unwind":
		args = append(args, "-fasynchronous-unwind-tables")
	case "pie":
		args = append(args, "-fPIE")
	}
	return append(args, "-c", filepath.Join("testdata", v.Src+".c"), "-o", out)
}

// Matrix lists every committed test object.
func Matrix() []Variant {
	var vs []Variant
	for _, a := range Arches {
		models := []string{"small", "medium", "large"}
		if a.Name == "aarch64" {
			models = []string{"small", "tiny", "large"}
		}
		for _, src := range []string{"loadtest", "multi_a", "multi_b", "xxh"} {
			for _, opt := range []string{"O0", "O1", "O2", "O3", "Os"} {
				for _, pic := range []bool{false, true} {
					for _, m := range models {
						vs = append(vs, Variant{Src: src, Arch: a.Name, Opt: opt, PIC: pic, Model: m})
					}
				}
			}
			for _, extra := range []string{"g", "sections", "unwind", "pie"} {
				vs = append(vs, Variant{Src: src, Arch: a.Name, Opt: "O2", Model: "small", Extra: extra})
			}
		}
		for _, src := range []string{"hostfn", "bad_tls", "bad_ctor"} {
			vs = append(vs, Variant{Src: src, Arch: a.Name, Opt: "O2", Model: "small"})
		}
		// softfp's operations are calls into the runtime at every level,
		// so the unoptimized and one optimized build cover it.
		for _, opt := range []string{"O0", "O2"} {
			vs = append(vs, Variant{Src: "softfp", Arch: a.Name, Opt: opt, PIC: true, Model: "small"})
		}
		// faults.c exercises the executor, not the loader: one build.
		vs = append(vs, Variant{Src: "faults", Arch: a.Name, Opt: "O2", PIC: true, Model: "small"})
	}
	return vs
}

// FindClang returns the clang to build test objects with: $BCSHIP_CLANG,
// else clang on PATH.
func FindClang() (string, error) {
	if c := os.Getenv("BCSHIP_CLANG"); c != "" {
		return c, nil
	}
	return exec.LookPath("clang")
}

// Version is the first line of clang --version, recorded beside the
// objects: objects are only comparable byte for byte between equal
// compilers.
func Version(ctx context.Context, clang string) (string, error) {
	out, err := exec.CommandContext(ctx, clang, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", clang, err)
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line), nil
}

// Build compiles v into out. root is the repository root.
func Build(ctx context.Context, clang, root string, v Variant, out string) error {
	cmd := exec.CommandContext(ctx, clang, v.Args(out)...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building %s: %v\n%s", v.Name(), err, stderr.String())
	}
	return nil
}

// RuntimeArgs are clang's arguments for the embedded host runtime
// (internal/hostrt/csrc/rt.c). -fno-builtin keeps the memory primitives from
// being compiled into calls to themselves.
func RuntimeArgs(triple, out string) []string {
	args := []string{"--target=" + triple, "-O2", "-fPIC", "-fno-builtin"}
	args = append(args, CommonFlags...)
	return append(args, "-c", "internal/hostrt/csrc/rt.c", "-o", out)
}

// Kernels are the prebuilt kernels embedded by package kernels, built from
// testdata/<name>.c into kernels/<name>.<arch>.o.
var Kernels = []string{"chase", "lookup", "gather"}

// KernelArgs are clang's arguments for a prebuilt kernel: position
// independent, so data references work wherever the node maps it.
func KernelArgs(name, triple, out string) []string {
	args := []string{"--target=" + triple, "-O2", "-fPIC"}
	args = append(args, CommonFlags...)
	return append(args, "-c", filepath.Join("testdata", name+".c"), "-o", out)
}

// VersionFile records the clang that built the committed objects.
const VersionFile = "testdata/CLANG_VERSION"
