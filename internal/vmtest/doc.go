// Package vmtest boots a Linux kernel under qemu with a Go test binary in its
// initramfs, so that tests needing kernel features this host lacks (RDMA,
// soft-RoCE) run in a VM. The host side (Config, Run) fetches the kernel
// package, builds the initramfs and streams the console; the guest side
// (Guest*) is what the /init program calls inside the VM.
//
// internal/cmd/rxevm wires both halves into a `go test -exec` wrapper.
package vmtest
