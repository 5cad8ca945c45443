// Package toolchain finds clang, llc and ld.lld, compiles kernels for every
// target triple and reads and writes bundles. Not implemented yet.
package toolchain
