// Package toolchain finds the LLVM tools, compiles kernels into bundles, and
// compiles bundle bitcode at the target.
//
// # Discovery
//
// A Toolchain looks each tool up once and caches what it learned (path,
// LLVM version, registered targets, llc's host CPU). clang is found as
// $BCSHIP_CLANG if set, else the first of clang, clang-19, …, clang-14 on
// PATH; llc, ld.lld, llvm-objcopy and llvm-link likewise ($BCSHIP_LLC,
// $BCSHIP_LD_LLD, …). Tools used on clang's output prefer clang's own
// version (llvm-link-19 for clang-19). A missing tool is a *ToolError
// naming the Debian package to install. Find checks for clang up front; New
// probes lazily, for nodes that only need llc.
//
// # Build
//
// Build compiles every source once per triple with KernelFlags (the flags
// the loader supports: freestanding, -fPIC, no stack protector) and
// bcship.h from package include, written to a temporary directory so the
// binary works anywhere. Several sources are linked into one relocatable
// object per triple with ld.lld -r. Every object must export the same
// BC_ENTRY functions.
//
// The bundle also carries LLVM bitcode, generated for BitcodeTriple (the
// first triple by default): clang emits textual IR, StripTargetAttributes
// removes the per-function target-cpu and target-features (which would
// otherwise override llc's -mcpu), and clang or llvm-link turn it into
// bitcode. clang has already lowered the C ABI for that triple, so bitcode
// is meant for retuning (-mcpu=native) on the same architecture; llc will
// also retarget it to other 64-bit little-endian triples, which holds for
// kernels that stick to bcship.h's types, but is not a general guarantee.
//
// Diagnostics are clang's own, with the source paths as given: warnings go
// to BuildOptions.Stderr, errors come back as a *CompileError.
//
// # At the target
//
// CompileBitcode runs llc on bitcode when llc is at least the producer's
// LLVM version and has the target, and caches objects on disk; otherwise
// the node reports ErrNeedCrossCompile and the origin must compile for it.
//
// ReadCode reads a bundle, or wraps a raw relocatable object into a
// one-triple bundle using the triple its ELF header names.
package toolchain
