//go:build linux && (amd64 || arm64)

package exec

import _ "unsafe" // for go:linkname

// The runtime marks entersyscall and exitsyscall as linkname targets
// ("Do not remove or change the type signature", go.dev/issue/67401; gVisor
// uses them the same way). The linker rejects the pull if the runtime stops
// exporting them, so a Go upgrade that breaks this fails the build, not a
// run. Both must be called from a //go:nosplit function: entersyscall
// records its caller's SP/PC for the GC, and the stack must not move or
// grow until exitsyscall.

// entersyscall puts the goroutine in syscall state: it keeps its M but lets
// the scheduler hand its P to others, and the GC scans it as stopped.
//
//go:linkname entersyscall runtime.entersyscall
func entersyscall()

// exitsyscall takes the goroutine back out of syscall state (reacquiring a
// P, possibly blocking for one).
//
//go:linkname exitsyscall runtime.exitsyscall
func exitsyscall()

// trampoline saves the Go side's state in the slot sl, switches SP to the
// native stack top sp, calls fn(cctx, arg, argLen) with the C ABI and
// switches back (trampoline_linux_*.s). It must only be called from
// callNative.
//
//go:noescape
func trampoline(fn, cctx, arg, argLen, sl, sp uintptr) int64

// nativeRecover is never called from Go: sigHandler resumes a faulting or
// aborted native call there. It is declared so that vet checks its frame.
//
//go:noescape
func nativeRecover(fn, cctx, arg, argLen, sl, sp uintptr) int64

// sigHandlerAddr returns the ABI0 entry of the assembly signal handler.
func sigHandlerAddr() uintptr

// sigReturnAddr returns the sa_restorer to use when a signal's previous
// action has none (amd64), or 0 (arm64).
func sigReturnAddr() uintptr

// callNative runs fn on the native stack with slot sl and top sp, with the
// goroutine in syscall state. It must not grow the stack (nosplit) and is not
// instrumented by the race detector (norace) for the same reason.
//
//go:nosplit
//go:norace
func callNative(fn, cctx, arg, argLen, sl, sp uintptr) int64 {
	entersyscall()
	r := trampoline(fn, cctx, arg, argLen, sl, sp)
	exitsyscall()
	return r
}
