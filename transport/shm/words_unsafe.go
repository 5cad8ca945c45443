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
func futexWait(w *atomic.Uint32, val uint32, d time.Duration) {
	ts := unix.NsecToTimespec(int64(d))
	// Syscall, not RawSyscall: this blocks, and the runtime must hand the
	// P to another thread meanwhile.
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(w)), futexWaitOp, uintptr(val),
		uintptr(unsafe.Pointer(&ts)), 0, 0)
}

// futexWake wakes every thread waiting on w.
func futexWake(w *atomic.Uint32) {
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(w)), futexWakeOp, math.MaxInt32, 0, 0, 0)
}
