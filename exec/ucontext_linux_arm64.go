package exec

// Kernel ucontext_t offsets for linux/arm64: uc_flags (8), uc_link (8),
// uc_stack (24), uc_sigmask (8), 120 bytes of reserved sigset space, then
// struct sigcontext (16-byte aligned) at 176: fault_address, regs[31], sp,
// pc, pstate.
const (
	ucMcontextOffset = 176
	ucRegsOffset     = ucMcontextOffset + 8 // regs[0] (x0) at 184, x_n at 184+8n
	ucX28Offset      = ucRegsOffset + 28*8  // g
	ucX29Offset      = ucRegsOffset + 29*8  // frame pointer
	ucX30Offset      = ucRegsOffset + 30*8  // link register
	ucSPOffset       = ucRegsOffset + 31*8  // 432
	ucPCOffset       = ucSPOffset + 8       // 440

	// forwardAllSignals: without cgo the arm64 Go runtime's signal
	// trampoline takes g from R28, which C code may use freely between its
	// prologue and epilogue (it is callee-saved in AAPCS64). Any signal the
	// runtime handles (SIGURG preemption, SIGPROF, SIGCHLD...) can land on
	// a thread running native code, so on arm64 our handler fronts every
	// signal Go handles and, when the thread is on a native stack, reloads
	// R28 from the slot before forwarding.
	forwardAllSignals = true
)
