package shm

import (
	"math"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Views of the shared control words. Offsets are multiples of 8 inside a
// page-aligned mapping (or an 8-aligned heap slice in tests), so the words
// are naturally aligned, as atomics and futexes need.

func word64(mem []byte, off int) *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Pointer(&mem[off : off+8][0]))
}

func word32(mem []byte, off int) *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Pointer(&mem[off : off+4][0]))
}

// futex(2) operations (linux/futex.h). Not the _PRIVATE variants: the
// word is shared with another process, so the kernel must key the wait on
// the page, not on this process's address space.
const (
	futexWaitOp = 0 // FUTEX_WAIT
	futexWakeOp = 1 // FUTEX_WAKE
)

// futexWait sleeps while *w == val, at most d (a safety net: a wake-up
// that is lost to a peer's bug costs d, never a hang). It returns early on
// a wake-up, a signal, or when *w != val already.
//
// It enters the syscall with entersyscallblock, which hands the P to
// another thread at once. With a plain Syscall the sleeping thread keeps
// its P until sysmon takes it (20 µs to 10 ms later): on a machine with two
// Ps, a sleeping receive loop would halve the processors left to the node
// and to the other connections' loops, which then sleep more themselves.
//
//go:nosplit
func futexWait(w *atomic.Uint32, val uint32, d time.Duration) {
	ts := unix.NsecToTimespec(int64(d))
	entersyscallblock()
	unix.RawSyscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(w)), futexWaitOp, uintptr(val),
		uintptr(unsafe.Pointer(&ts)), 0, 0)
	exitsyscall()
}

// The runtime marks entersyscallblock and exitsyscall as linkname targets
// ("Do not remove or change the type signature", go.dev/issue/67401; gVisor
// uses them the same way, and so does package exec for exitsyscall). The
// linker rejects the pull if the runtime stops exporting them, so a Go
// upgrade that breaks this fails the build, not a run. Only nosplit code
// may run between the two (RawSyscall6 is).

//go:linkname entersyscallblock runtime.entersyscallblock
func entersyscallblock()

//go:linkname exitsyscall runtime.exitsyscall
func exitsyscall()

// futexWake wakes every thread waiting on w.
func futexWake(w *atomic.Uint32) {
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(w)), futexWakeOp, math.MaxInt32, 0, 0, 0)
}
