//go:build linux && (amd64 || arm64)

package exec

import "structs"

// This file holds every memory layout the assembly (trampoline_linux_*.s)
// shares with Go or with the kernel. The assembly includes go_asm.h and uses
// these constants by name (const_slotGoSPOffset, ...), so a literal can never
// drift from its Go definition; Test_slotOffsets and Test_regionOffsets pin
// the Go constants to unsafe.Offsetof/Sizeof.

// slot is the per-stack control block at the very top of each native stack.
// The trampoline saves the Go side's registers in it before switching SP
// below it; the signal handler finds it from the interrupted SP alone (see
// region) and records the fault in it; Go reads it back after the call.
// Only the thread running a call on this stack touches it during the call
// (the handler runs on that same thread), so no synchronisation is needed.
type slot struct {
	_      structs.HostLayout
	goSP   uintptr // Go SP at trampoline entry (points at the return address on amd64)
	g      uintptr // R14 (amd64) / R28 (arm64): the goroutine's g; 0 when no call is active
	fp     uintptr // BP (amd64) / R29 (arm64): the Go frame pointer
	lr     uintptr // R30 (arm64): the trampoline's return address (NOFRAME); unused on amd64
	status uint64  // statusNone, statusFault or statusAborted, written by the handler
	signal uint64  // signal number, written by the handler
	code   uint64  // siginfo si_code (sign-extended), written by the handler
	pc     uintptr // interrupted PC, written by the handler
	addr   uintptr // siginfo si_addr, written by the handler
	token  uint64  // deadline token of the call now running, written by Go before the call
	tmp    uint64  // scratch for the recovery path (amd64: MXCSR image)
	tls    uintptr // arm64: TPIDR_EL0 of the thread before the call
	_      [4]uint64
}

const (
	slotGoSPOffset   = 0
	slotGOffset      = 8
	slotFPOffset     = 16
	slotLROffset     = 24
	slotStatusOffset = 32
	slotSignalOffset = 40
	slotCodeOffset   = 48
	slotPCOffset     = 56
	slotAddrOffset   = 64
	slotTokenOffset  = 72
	slotTmpOffset    = 80
	slotTLSOffset    = 88
	// slotSize is also the distance between the slot and the top of the
	// stack mapping; the native SP starts at the slot (16-byte aligned).
	slotSize = 128
)

// Values of slot.status.
const (
	statusNone    = 0
	statusFault   = 1
	statusAborted = 2
)

// region describes the address range of one Executor's stacks. Stack i
// occupies [base+i<<shift, base+(i+1)<<shift): a guard at the bottom, the
// stack above it, the slot at the top. The handler locates a slot from an
// interrupted SP with one range check and two shifts, without locks or
// allocation: slot = base + ((sp-base)>>shift+1)<<shift - slotSize.
//
// When the SP is not in any region but the thread is running native code
// (a frame larger than the guard, or code that moved SP elsewhere), the
// handler identifies the thread's active slot another way: on amd64 by
// comparing slot.g of every committed slot with the g in the thread's TLS,
// on arm64 by the slot address the trampoline keeps in TPIDR_EL0.
type region struct {
	_      structs.HostLayout
	base   uintptr // 0 when the entry is free
	end    uintptr // base + (number of committed stacks)<<shift
	shift  uintptr // log2 of the stack stride
	stride uintptr // 1<<shift
}

const (
	regionBaseOffset   = 0
	regionEndOffset    = 8
	regionShiftOffset  = 16
	regionStrideOffset = 24
	regionSize         = 32
	// maxRegions bounds the number of open Executors in a process.
	maxRegions = 32
)

// Signals. The numbers are the same on linux/amd64 and linux/arm64.
const (
	sigILL  = 4
	sigTRAP = 5
	sigBUS  = 7
	sigFPE  = 8
	sigKILL = 9
	sigSEGV = 11
	sigSTOP = 19
	// faultSignalMask has bit n set for every signal n the handler treats
	// as a fault of the native code when it interrupts a native stack.
	faultSignalMask = 1<<sigILL | 1<<sigTRAP | 1<<sigBUS | 1<<sigFPE | 1<<sigSEGV

	// deadlineSignal is the real-time signal sent (rt_tgsigqueueinfo) to
	// the thread running a kernel whose deadline passed. Why 40: signals
	// 32-34 belong to glibc/musl (SIGCANCEL, SIGSETXID, SIGSYNCCALL; the Go
	// runtime leaves them alone), SIGURG is Go's preemption signal,
	// SIGPROF its profiler's, SIGUSR1/2 are the applications'. Signals
	// 35-64 carry only _SigNotify in the runtime's table: Go uses none of
	// them unless the program asks os/signal to. 40 is the number the
	// design prototype measured. A program that calls signal.Ignore(40)
	// disables deadlines; one that calls signal.Notify for it still works
	// (our own signals are recognised and never reach the runtime).
	deadlineSignal = 40
	numSignals     = 64
)

// Kernel siginfo_t offsets (64-bit layout: three ints, padding, then the
// union at 16).
const (
	siCodeOffset  = 8  // int si_code
	siAddrOffset  = 16 // void *si_addr (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP)
	siPidOffset   = 16 // pid_t si_pid (SI_QUEUE)
	siUIDOffset   = 20 // uid_t si_uid (SI_QUEUE)
	siValueOffset = 24 // sigval_t si_value (SI_QUEUE)
	siSize        = 128
	// siQueue is SI_QUEUE, the si_code rt_tgsigqueueinfo lets a process
	// put on a signal it sends to itself; siTimer is SI_TIMER, the code of
	// a POSIX timer's signal, with sigev_value at the same offset. The
	// handler takes a deadlineSignal as ours only if si_code is one of the
	// two (si_code+siCodeBias <= siCodeRange, unsigned) and si_value
	// carries tokenMagic. Other codes must not be trusted with si_value:
	// for SI_TKILL it is not part of the siginfo (qemu-user even leaves
	// stale bytes there).
	siQueue     = -1
	siTimer     = -2
	siCodeBias  = -siTimer
	siCodeRange = siQueue - siTimer

	// sigevent for timer_create: notify one thread (SIGEV_THREAD_ID).
	sigevThreadID = 4
	sigeventSize  = 64
)

// Deadline tokens ride in si_value of deadlineSignal (sent by a POSIX
// timer at the deadline, by rt_tgsigqueueinfo on cancellation). The top 12
// bits are tokenMagic (so the handler recognises our signals even when it
// finds the thread off our stacks, and drops them instead of forwarding
// them), then
// the stack's identity (region index and stack index, 20 bits), then a
// 32-bit generation bumped by every call on that stack. The handler unwinds
// only if the token equals slot.token of the stack the thread is on, so a
// signal that arrives late (after the call returned, or during a later call)
// is harmless.
const (
	tokenMagic      = 0xBC5
	tokenMagicShift = 52
	tokenIDShift    = 32
)

// sigaction flags (the same values on amd64 and arm64).
const (
	saSigInfo  = 0x4
	saOnStack  = 0x08000000
	saRestart  = 0x10000000
	saRestorer = 0x04000000
)

// sigactiont is the kernel's struct sigaction for rt_sigaction on amd64
// and arm64.
type sigactiont struct {
	_        structs.HostLayout
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

// sigevent is the kernel's struct sigevent for SIGEV_THREAD_ID.
type sigevent struct {
	_      structs.HostLayout
	value  uint64 // sigev_value
	signo  int32
	notify int32
	tid    int32
	_      [sigeventSize - 20]byte
}

// siginfo is the kernel's siginfo_t, reduced to the SI_QUEUE fields.
type siginfo struct {
	_     structs.HostLayout
	signo int32
	errno int32
	code  int32
	_     int32
	pid   int32
	uid   uint32
	value uint64
	_     [siSize - 32]byte
}
