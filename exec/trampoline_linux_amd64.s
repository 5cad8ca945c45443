// Native-call trampoline, recovery path and signal handler for linux/amd64.
// Every displacement and immediate below is a Go constant from
// layout_linux.go / ucontext_linux_amd64.go, taken from go_asm.h by name.

#include "textflag.h"
#include "go_asm.h"

// func trampoline(fn, cctx, arg, argLen, sl, sp uintptr) int64
//
// Called (ABI0) from callNative with the goroutine in syscall state. Saves
// the Go SP, BP and g (R14) in the slot sl, switches SP to the native stack
// top sp and calls fn(cctx, arg, argLen) with the SysV ABI (RDI, RSI, RDX;
// SP 16-byte aligned before the CALL since sp is). The slot pointer rides
// in R12, callee-saved in the SysV ABI. slot.g is stored last and cleared
// on the way out: non-zero, it marks the slot as active on the thread whose
// TLS holds that g. NOFRAME: the assembler must not push BP, because
// nativeRecover returns from this frame using only what the slot holds.
TEXT ·trampoline(SB), NOSPLIT|NOFRAME, $0-56
	MOVQ	fn+0(FP), AX
	MOVQ	cctx+8(FP), DI
	MOVQ	arg+16(FP), SI
	MOVQ	argLen+24(FP), DX
	MOVQ	sl+32(FP), R12
	MOVQ	sp+40(FP), R8
	MOVQ	SP, const_slotGoSPOffset(R12)
	MOVQ	BP, const_slotFPOffset(R12)
	MOVQ	R14, const_slotGOffset(R12)
	MOVQ	R8, SP
	CALL	AX
	MOVQ	const_slotGoSPOffset(R12), SP
	MOVQ	const_slotFPOffset(R12), BP
	MOVQ	const_slotGOffset(R12), R14 // Go ABIInternal: R14 = g
	MOVQ	$0, const_slotGOffset(R12)  // no call active on this slot
	XORPS	X15, X15                    // Go ABIInternal: X15 = 0
	MOVQ	AX, ret+48(FP)
	RET

// func nativeRecover(fn, cctx, arg, argLen, sl, sp uintptr) int64
//
// Never called: sigHandler points the interrupted context's RIP here and
// its RSP at the slot (not the stack: the slot page is writable), so this runs in place of the rest of the native code
// and returns to trampoline's caller as trampoline would have. The handler
// also put the saved Go BP and g into the context, so RBP and R14 are
// right already; everything else is garbage: restore the rest of what Go
// relies on, and the state C code could have left odd (DF, MXCSR). The
// result is 0; callNative's caller reads the slot's status instead.
TEXT ·nativeRecover(SB), NOSPLIT|NOFRAME, $0-56
	MOVQ	SP, R8
	CLD
	MOVL	$const_mxcsrDefault, const_slotTmpOffset(R8)
	LDMXCSR	const_slotTmpOffset(R8)
	MOVQ	const_slotGoSPOffset(R8), SP
	MOVQ	const_slotGOffset(R8), R14 // Go ABIInternal: R14 = g
	MOVQ	$0, const_slotGOffset(R8)  // no call active on this slot
	XORPS	X15, X15                   // Go ABIInternal: X15 = 0
	MOVQ	$0, ret+48(FP)
	RET

// sigHandler is installed with rt_sigaction (SA_SIGINFO|SA_ONSTACK, so it
// runs on the thread's sigaltstack even after a stack overflow). C ABI:
// DI = signal, SI = siginfo_t*, DX = ucontext_t*. It uses only AX, CX and
// R8-R11, which are dead at entry of any C function, so a forwarded signal
// reaches the previous handler with its arguments, SP and return address
// (the sa_restorer) untouched.
//
// If the interrupted RSP is inside a registered region (one of our native
// stacks or its guard):
//   - a fault signal (faultSignalMask) is recorded in the slot and unwound;
//   - deadlineSignal carrying the token of the call running on this stack
//     is recorded (statusAborted) and unwound; with another token of ours it
//     is a late signal and dropped;
//   - anything else is forwarded.
// Otherwise:
//   - deadlineSignal carrying one of our tokens is dropped (a late abort);
//   - a fault signal on a thread that has an active slot (slot.g == the g
//     in this thread's TLS: native code that moved SP out of its stack,
//     e.g. a frame larger than the guard) is recorded and unwound;
//   - anything else is forwarded.
TEXT ·sigHandler(SB), NOSPLIT|NOFRAME, $0
	MOVQ	const_ucRSPOffset(DX), AX // interrupted RSP
	MOVQ	$·regions(SB), R8
	MOVQ	$const_maxRegions, CX

scan:
	MOVQ	const_regionBaseOffset(R8), R9
	TESTQ	R9, R9
	JZ	next
	CMPQ	AX, R9
	JCS	next                         // SP < base
	CMPQ	AX, const_regionEndOffset(R8)
	JCS	found                        // SP < end
next:
	ADDQ	$const_regionSize, R8
	DECQ	CX
	JNZ	scan

	// Not on a native stack.
	CMPQ	DI, $const_deadlineSignal
	JNE	notdeadline
	MOVLQSX	const_siCodeOffset(SI), R9
	ADDQ	$const_siCodeBias, R9
	CMPQ	R9, $const_siCodeRange
	JHI	forward                      // si_code not SI_TIMER (-2) or SI_QUEUE (-1)
	MOVQ	const_siValueOffset(SI), R9
	SHRQ	$const_tokenMagicShift, R9
	CMPQ	R9, $const_tokenMagic
	JNE	forward
	RET                                  // our late deadline signal: drop

notdeadline:
	MOVQ	$1, R9
	MOVQ	DI, CX
	SHLQ	CX, R9
	TESTQ	$const_faultSignalMask, R9
	JZ	forward
	// A fault off our stacks: is this thread in a native call anyway?
	MOVQ	(TLS), R10                   // this thread's g
	TESTQ	R10, R10
	JZ	forward
	MOVQ	$·regions(SB), R8
	MOVQ	$const_maxRegions, CX
gscan:
	MOVQ	const_regionBaseOffset(R8), AX
	TESTQ	AX, AX
	JZ	gnext
	MOVQ	const_regionStrideOffset(R8), R11
	ADDQ	R11, AX
	SUBQ	$const_slotSize, AX          // slot of stack 0
gslot:
	CMPQ	AX, const_regionEndOffset(R8)
	JCC	gnext                        // past the committed stacks
	CMPQ	R10, const_slotGOffset(AX)
	JEQ	gfound
	ADDQ	R11, AX
	JMP	gslot
gnext:
	ADDQ	$const_regionSize, R8
	DECQ	CX
	JNZ	gscan

forward:
	MOVQ	$·oldHandlers(SB), R9
	MOVQ	(R9)(DI*8), R9
	CMPQ	R9, $1
	JLS	drop                         // SIG_DFL (0) / SIG_IGN (1): nothing to forward to
	JMP	R9

drop:
	RET

gfound:
	MOVQ	$const_statusFault, R9
	JMP	unwind

found:
	// R8 = region, R9 = region base, AX = interrupted RSP.
	// slot = base + ((sp-base)>>shift + 1)<<shift - slotSize
	SUBQ	R9, AX
	MOVQ	const_regionShiftOffset(R8), CX
	SHRQ	CX, AX
	INCQ	AX
	SHLQ	CX, AX
	ADDQ	R9, AX
	SUBQ	$const_slotSize, AX          // AX = slot of the interrupted stack

	CMPQ	DI, $const_deadlineSignal
	JNE	fault
	MOVLQSX	const_siCodeOffset(SI), R9
	ADDQ	$const_siCodeBias, R9
	CMPQ	R9, $const_siCodeRange
	JHI	forward                      // si_code not SI_TIMER (-2) or SI_QUEUE (-1)
	MOVQ	const_siValueOffset(SI), R9
	MOVQ	R9, R10
	SHRQ	$const_tokenMagicShift, R10
	CMPQ	R10, $const_tokenMagic
	JNE	forward
	CMPQ	R9, const_slotTokenOffset(AX)
	JNE	drop                         // ours, but for another call: drop
	CMPQ	const_slotStatusOffset(AX), $const_statusNone
	JNE	drop                         // already unwinding (a second signal for this call)
	MOVQ	$const_statusAborted, R9
	JMP	unwind

fault:
	MOVQ	$1, R9
	MOVQ	DI, CX
	SHLQ	CX, R9
	TESTQ	$const_faultSignalMask, R9
	JZ	forward
	MOVQ	$const_statusFault, R9

unwind:
	// AX = slot, R9 = status.
	MOVQ	R9, const_slotStatusOffset(AX)
	MOVQ	DI, const_slotSignalOffset(AX)
	MOVLQSX	const_siCodeOffset(SI), R9
	MOVQ	R9, const_slotCodeOffset(AX)
	MOVQ	const_siAddrOffset(SI), R9
	MOVQ	R9, const_slotAddrOffset(AX)
	MOVQ	const_ucRIPOffset(DX), R9
	MOVQ	R9, const_slotPCOffset(AX)
	// Resume in nativeRecover with RSP = slot and the Go BP and g.
	MOVQ	const_slotFPOffset(AX), R9
	MOVQ	R9, const_ucRBPOffset(DX)
	MOVQ	const_slotGOffset(AX), R9
	MOVQ	R9, const_ucR14Offset(DX)
	MOVQ	AX, const_ucRSPOffset(DX)
	MOVQ	$·nativeRecover(SB), R9
	MOVQ	R9, const_ucRIPOffset(DX)
	RET

// sigReturn is the sa_restorer used when the previous action of a signal
// had none (x86-64 requires one): rt_sigreturn(2).
TEXT ·sigReturn(SB), NOSPLIT|NOFRAME, $0
	MOVQ	$15, AX // SYS_rt_sigreturn on amd64
	SYSCALL
	INT	$3

// func sigHandlerAddr() uintptr
// The handler's ABI0 entry point (a Go func value would name the
// ABIInternal wrapper).
TEXT ·sigHandlerAddr(SB), NOSPLIT, $0-8
	MOVQ	$·sigHandler(SB), AX
	MOVQ	AX, ret+0(FP)
	RET

// func sigReturnAddr() uintptr
TEXT ·sigReturnAddr(SB), NOSPLIT, $0-8
	MOVQ	$·sigReturn(SB), AX
	MOVQ	AX, ret+0(FP)
	RET
