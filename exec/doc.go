// Package exec is the only place in bcship that jumps into shipped native
// code.
//
// An Executor runs C-ABI entry points of the form
//
//	int64_t entry(void *ctx, const void *arg, uint64_t arg_len);
//
// on pooled native stacks it maps itself (each with a large PROT_NONE guard
// below it), through a Go-assembly trampoline for linux/amd64 and
// linux/arm64. While native code runs, the calling goroutine is in syscall
// state on a locked OS thread, so a kernel that spins for seconds stalls
// neither the garbage collector nor other goroutines.
//
// Faults are contained: a signal handler written in assembly catches
// SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGTRAP raised while the thread's stack
// pointer lies on one of the Executor's native stacks (including a stack
// overflow into the guard), unwinds to the trampoline and makes Call return a
// *Fault. Every other signal is forwarded, registers untouched, to the handler
// that was installed before (the Go runtime's), so Go's own nil-pointer
// panics, preemption and profiling keep working.
//
// Deadlines are enforced: when the context of a Call is done while the
// kernel runs, a thread-directed real-time signal (40) carrying a per-call
// token unwinds the kernel and Call returns an *AbortError matching
// ErrDeadline and the context's error. At a deadline the signal comes from a
// POSIX timer armed for the call's thread (so the abort does not wait for
// the Go scheduler); on cancellation from a goroutine (context.AfterFunc).
// A signal that arrives after the call returned, or during a later call,
// carries a stale token and is dropped. CallUntil takes an absolute
// deadline and the caller's clock reading instead of a context; a deadline
// beyond 50 ms is then enforced by one watchdog goroutine per Executor,
// which signals every overdue call, and Options.Context aborts every call
// at once: what a server running many short calls under the same long
// timeout wants, since nothing is armed per call.
//
// Lifetime: New reserves the address space of all stacks at once and commits
// stacks lazily; Close waits for calls in flight and unmaps everything. The
// signal handlers are installed once per process, by the first New, and stay
// installed.
//
// Costs (amd64): a Call with a context that cannot be done costs about as
// much as two atomic operations plus the runtime's syscall entry and exit
// (BenchmarkCallEmpty, ~35 ns); a Call whose context can be done also arms
// a timer and an AfterFunc (~0.6-4 µs, ~20 µs under qemu TCG); a CallUntil
// with a far deadline adds three atomic stores and no system call
// (BenchmarkCallUntil, ~60 ns); a fault costs a signal delivery (~4 µs).
//
// Note: shipped code runs in the address space of the process. Containment
// covers bugs (wild pointers, traps, runaway recursion, endless loops,
// frames larger than the guard, stray writes above the stack), not hostile
// code, which can always corrupt the process. A kernel aborted by a
// deadline or a fault leaves whatever it was writing half-written.
//
// Note: shipped code must not store Go pointers into Go memory (no write
// barriers), use thread-local storage (arm64 keeps the active call in
// TPIDR_EL0), change the signal mask or handlers, or call back into Go.
// Memory passed as cctx/arg must not be Go stack memory and must be kept
// alive by the caller for the duration of the call.
//
// Note: how the signal handler finds the call a signal interrupted. Each
// native stack has a control block (slot) at the top of its stride of one
// address range reserved per Executor; the handler maps the interrupted SP
// to it with a range check and two shifts. If SP is outside every range
// (native code moved it), a fault is still attributed to the thread's
// active call: on amd64 by the g in the thread's TLS, on arm64 by the slot
// address the trampoline keeps in TPIDR_EL0. On arm64 the handler also
// fronts every signal the Go runtime handles: without cgo the runtime takes
// g from R28, which C code may be using, so the handler reloads R28 from
// the slot before forwarding a signal that interrupted native code.
//
// Note: signal.Ignore of signal 40 disables deadlines (the runtime then
// replaces the handler); signal.Notify for it keeps working.
package exec
