package bcship

import (
	"context"
	"debug/elf"

	"github.com/bcship/bcship/loader"
)

// Compiler compiles bundle bitcode into relocatable objects: for this
// node's own triple when a bundle has no object for it, and for peers
// that cannot compile themselves. *toolchain.Toolchain implements it; the
// interface keeps package toolchain (and its exec of clang/llc) out of
// binaries that never compile, such as bcshipd.
type Compiler interface {
	// CompileBitcode compiles bc for triple; producerLLVM is the LLVM
	// major version that wrote the bitcode.
	CompileBitcode(ctx context.Context, bc []byte, triple string, producerLLVM int) ([]byte, error)
	// LLVMVersion is the major version of the LLVM that compiles here, or
	// an error when there is none; a node announces it in HELLO.
	LLVMVersion(ctx context.Context) (int, error)
}

// hostTriple is the triple of this machine as the loader sees it. It
// mirrors toolchain.TripleFor (TestHostTripleMatchesToolchain keeps them
// in step) so that the node needs no toolchain import.
func hostTriple() (string, bool) {
	switch loader.HostMachine() {
	case elf.EM_X86_64:
		return "x86_64-linux-gnu", true
	case elf.EM_AARCH64:
		return "aarch64-linux-gnu", true
	case elf.EM_RISCV:
		return "riscv64-linux-gnu", true
	}
	return "", false
}
