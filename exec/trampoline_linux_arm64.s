// Native-call trampoline, recovery path and signal handler for linux/arm64.
// Every displacement and immediate below is a Go constant from
// layout_linux.go / ucontext_linux_arm64.go, taken from go_asm.h by name.

#include "textflag.h"
#include "go_asm.h"

// func trampoline(fn, cctx, arg, argLen, sl, sp uintptr) int64
//
// Called (ABI0) from callNative with the goroutine in syscall state. Saves
// RSP, g (R28), the frame pointer (R29) and the return address (R30: the
// function is NOFRAME, so LR is not on the Go stack) in the slot sl, points
// TPIDR_EL0 at the slot (saving the old value; Go without cgo leaves
// TPIDR_EL0 alone and shipped code has no TLS) so the signal handler can
// find the thread's active call even when SP is elsewhere, switches RSP to
// the native stack top sp (16-byte aligned) and calls fn(cctx, arg, argLen)
// with AAPCS64 (X0, X1, X2). The slot pointer rides in R19, callee-saved in
// AAPCS64. X28 is callee-saved too but is reloaded anyway, as nativeRecover
// must.
TEXT ·trampoline(SB), NOSPLIT|NOFRAME, $0-56
	MOVD	fn+0(FP), R9
	MOVD	cctx+8(FP), R0
	MOVD	arg+16(FP), R1
	MOVD	argLen+24(FP), R2
	MOVD	sl+32(FP), R19
	MOVD	sp+40(FP), R11
	MOVD	RSP, R10
	MOVD	R10, const_slotGoSPOffset(R19)
	MOVD	R29, const_slotFPOffset(R19)
	MOVD	R30, const_slotLROffset(R19)
	MRS	TPIDR_EL0, R12
	MOVD	R12, const_slotTLSOffset(R19)
	MOVD	g, const_slotGOffset(R19)
	MSR	R19, TPIDR_EL0
	MOVD	R11, RSP
	CALL	(R9)
	MOVD	const_slotTLSOffset(R19), R12
	MSR	R12, TPIDR_EL0
	MOVD	const_slotGoSPOffset(R19), R11
	MOVD	R11, RSP
	MOVD	const_slotGOffset(R19), g
	MOVD	const_slotFPOffset(R19), R29
	MOVD	const_slotLROffset(R19), R30
	MOVD	ZR, const_slotGOffset(R19) // no call active on this slot
	MOVD	R0, ret+48(FP)
	RET

// func nativeRecover(fn, cctx, arg, argLen, sl, sp uintptr) int64
//
// Never called: sigHandler points the interrupted context's PC here and its
// SP at the slot (not the stack: the slot page is writable), so this runs in place of the rest of the native code and
// returns to trampoline's caller as trampoline would have. The handler also
// put the saved R28 (g), R29 (frame pointer) and R30 (return address) into
// the context; everything else is garbage: restore TPIDR_EL0 and RSP from
// the slot (R28 and R30 once more, cheaply) and the default FPCR (round to
// nearest, no traps). The result is 0; callNative's caller reads the slot's
// status instead.
TEXT ·nativeRecover(SB), NOSPLIT|NOFRAME, $0-56
	MOVD	RSP, R10
	MOVD	const_slotTLSOffset(R10), R12
	MSR	R12, TPIDR_EL0
	MOVD	const_slotGoSPOffset(R10), R11
	MOVD	R11, RSP
	MOVD	const_slotGOffset(R10), g
	MOVD	const_slotLROffset(R10), R30
	MOVD	ZR, const_slotGOffset(R10) // no call active on this slot
	MOVD	ZR, FPCR
	MOVD	ZR, ret+48(FP)
	RET

// sigHandler is installed with rt_sigaction (SA_SIGINFO|SA_ONSTACK, so it
// runs on the thread's sigaltstack even after a stack overflow). C ABI:
// R0 = signal, R1 = siginfo_t*, R2 = ucontext_t*, R30 = return to the
// sigreturn trampoline. It uses only R9-R15 (temporaries in AAPCS64), so a
// forwarded signal reaches the previous handler with its arguments, SP and
// LR untouched; the one deliberate exception is R28 when the thread was
// running native code (see forwardOurs).
//
// The slot is looked up first from the interrupted SP (the thread is on
// one of our native stacks or its guard), then, failing that, from
// TPIDR_EL0 (the thread is in a native call whose SP left its stack). With
// a slot:
//   - a fault signal (faultSignalMask) is recorded in the slot and unwound;
//   - deadlineSignal carrying the token of the call running on this stack
//     is recorded (statusAborted) and unwound; with another token of ours it
//     is a late signal and dropped;
//   - anything else is forwarded, with R28 = the goroutine's g.
// Without: deadlineSignal carrying one of our tokens is dropped (a late
// abort after the call returned), and anything else is forwarded untouched.
TEXT ·sigHandler(SB), NOSPLIT|NOFRAME, $0
	MOVD	const_ucSPOffset(R2), R9 // interrupted SP
	MOVD	ZR, R15                  // pass: 0 = by SP, 1 = by TPIDR_EL0

rescan:
	MOVD	$·regions(SB), R10
	MOVD	$const_maxRegions, R11
scan:
	MOVD	const_regionBaseOffset(R10), R12
	CBZ	R12, next
	CMP	R12, R9
	BLO	next                         // R9 < base
	MOVD	const_regionEndOffset(R10), R13
	CMP	R13, R9
	BLO	found                        // R9 < end
next:
	ADD	$const_regionSize, R10
	SUBS	$1, R11
	BNE	scan
	CBNZ	R15, notours
	MRS	TPIDR_EL0, R9
	CBZ	R9, notours
	MOVD	$1, R15
	B	rescan

notours:
	CMPW	$const_deadlineSignal, R0
	BNE	forward
	MOVW	const_siCodeOffset(R1), R12  // sign-extending load
	ADD	$const_siCodeBias, R12
	CMP	$const_siCodeRange, R12
	BHI	forward                      // si_code not SI_TIMER (-2) or SI_QUEUE (-1)
	MOVD	const_siValueOffset(R1), R12
	LSR	$const_tokenMagicShift, R12, R12
	CMP	$const_tokenMagic, R12
	BNE	forward
	RET                                  // our late deadline signal: drop

forward:
	MOVD	$·oldHandlers(SB), R12
	MOVD	(R12)(R0<<3), R12
	CMP	$1, R12
	BLS	drop                         // SIG_DFL (0) / SIG_IGN (1): nothing to forward to
	JMP	(R12)

drop:
	RET

found:
	// R10 = region, R12 = region base, R9 = interrupted SP or the slot.
	// slot = base + ((R9-base)>>shift + 1)<<shift - slotSize
	SUB	R12, R9, R13
	MOVD	const_regionShiftOffset(R10), R14
	LSR	R14, R13, R13
	ADD	$1, R13, R13
	LSL	R14, R13, R13
	ADD	R12, R13, R13
	SUB	$const_slotSize, R13, R13    // R13 = slot
	MOVD	const_slotGOffset(R13), R14
	CBZ	R14, notours                 // no call active there (stale TPIDR_EL0)

	CMPW	$const_deadlineSignal, R0
	BNE	fault
	MOVW	const_siCodeOffset(R1), R12
	ADD	$const_siCodeBias, R12
	CMP	$const_siCodeRange, R12
	BHI	forwardOurs                  // si_code not SI_TIMER (-2) or SI_QUEUE (-1)
	MOVD	const_siValueOffset(R1), R12
	LSR	$const_tokenMagicShift, R12, R14
	CMP	$const_tokenMagic, R14
	BNE	forwardOurs
	MOVD	const_slotTokenOffset(R13), R14
	CMP	R14, R12
	BNE	drop                         // ours, but for another call: drop
	MOVD	const_slotStatusOffset(R13), R14
	CBNZ	R14, drop                    // status != statusNone: already unwinding (a second signal for this call)
	MOVD	$const_statusAborted, R12
	B	unwind

fault:
	MOVD	$1, R12
	LSL	R0, R12, R12
	MOVD	$const_faultSignalMask, R14
	TST	R14, R12
	BEQ	forwardOurs
	MOVD	$const_statusFault, R12

unwind:
	// R13 = slot, R12 = status.
	MOVD	R12, const_slotStatusOffset(R13)
	MOVD	R0, const_slotSignalOffset(R13)
	MOVW	const_siCodeOffset(R1), R12
	MOVD	R12, const_slotCodeOffset(R13)
	MOVD	const_siAddrOffset(R1), R12
	MOVD	R12, const_slotAddrOffset(R13)
	MOVD	const_ucPCOffset(R2), R12
	MOVD	R12, const_slotPCOffset(R13)
	// Resume in nativeRecover with SP = slot and the Go R28, R29, R30.
	MOVD	const_slotGOffset(R13), R12
	MOVD	R12, const_ucX28Offset(R2)
	MOVD	const_slotFPOffset(R13), R12
	MOVD	R12, const_ucX29Offset(R2)
	MOVD	const_slotLROffset(R13), R12
	MOVD	R12, const_ucX30Offset(R2)
	MOVD	R13, const_ucSPOffset(R2)
	MOVD	$·nativeRecover(SB), R12
	MOVD	R12, const_ucPCOffset(R2)
	RET

forwardOurs:
	// A signal for the Go runtime (preemption, profiling, a process-wide
	// signal...) interrupted native code. Without cgo, Go's sigtramp takes g
	// from R28, which the C code may be using: hand it the g of the
	// goroutine that owns this stack (in syscall state). The interrupted
	// context's own R28 is in the ucontext and comes back at sigreturn.
	MOVD	const_slotGOffset(R13), g
	B	forward

// func sigHandlerAddr() uintptr
// The handler's ABI0 entry point (a Go func value would name the
// ABIInternal wrapper).
TEXT ·sigHandlerAddr(SB), NOSPLIT, $0-8
	MOVD	$·sigHandler(SB), R0
	MOVD	R0, ret+0(FP)
	RET

// func sigReturnAddr() uintptr
// arm64 needs no sa_restorer (the kernel returns through the vDSO).
TEXT ·sigReturnAddr(SB), NOSPLIT, $0-8
	MOVD	ZR, ret+0(FP)
	RET
