package shm

import (
	"math"
	"structs"
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

// futexWaiter is struct futex_waitv (linux/futex.h).
type futexWaiter struct {
	_     structs.HostLayout
	val   uint64
	uaddr uint64
	flags uint32
	_     uint32
}

const (
	futex2SizeU32 = 0x02 // FUTEX2_SIZE_U32; not FUTEX2_PRIVATE: shared words
	futexWaitvMax = 128  // FUTEX_WAITV_MAX
)

func waiterFor(w *atomic.Uint32, val uint32) futexWaiter {
	return futexWaiter{val: uint64(val), uaddr: uint64(uintptr(unsafe.Pointer(w))), flags: futex2SizeU32}
}

// futexWaitv sleeps until any of ws is woken or differs from its value,
// at most d (futex_waitv(2), Linux 5.16). ENOSYS means an older kernel.
//
//go:nosplit
func futexWaitv(ws []futexWaiter, d time.Duration) unix.Errno {
	var ts unix.Timespec // futex_waitv takes an absolute time
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	ts = unix.NsecToTimespec(ts.Nano() + int64(d))
	var p unsafe.Pointer
	if len(ws) > 0 {
		p = unsafe.Pointer(&ws[0])
	}
	entersyscallblock()
	_, _, e := unix.RawSyscall6(unix.SYS_FUTEX_WAITV, uintptr(p), uintptr(len(ws)), 0,
		uintptr(unsafe.Pointer(&ts)), unix.CLOCK_MONOTONIC, 0)
	exitsyscall()
	return e
}

// haveFutexWaitv probes for futex_waitv: with no waiters it fails with
// EINVAL where it exists.
func haveFutexWaitv() bool {
	_, _, e := unix.RawSyscall6(unix.SYS_FUTEX_WAITV, 0, 0, 0, 0, unix.CLOCK_MONOTONIC, 0)
	return e != unix.ENOSYS
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
