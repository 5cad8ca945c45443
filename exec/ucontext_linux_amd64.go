package exec

// Kernel ucontext_t offsets for linux/amd64: uc_flags (8), uc_link (8),
// uc_stack (24), then uc_mcontext.gregs at 40, indexed by REG_* of
// <sys/ucontext.h>.
const (
	ucGregsOffset = 40
	ucR14Offset   = ucGregsOffset + 6*8  // gregs[REG_R14]
	ucRBPOffset   = ucGregsOffset + 10*8 // gregs[REG_RBP]
	ucRSPOffset   = ucGregsOffset + 15*8 // gregs[REG_RSP]
	ucRIPOffset   = ucGregsOffset + 16*8 // gregs[REG_RIP]

	// mxcsrDefault is the MXCSR value Go (and the C ABI) assume: all
	// exceptions masked, round to nearest. The recovery path reloads it.
	mxcsrDefault = 0x1F80

	// forwardAllSignals: on amd64 the Go runtime's signal trampoline takes
	// g from TLS, so only the fault and deadline signals need our handler.
	forwardAllSignals = false
)
