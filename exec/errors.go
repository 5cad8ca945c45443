package exec

import (
	"errors"
	"fmt"
	"syscall"
)

var (
	// ErrNotSupported is returned by New on platforms other than
	// linux/amd64 and linux/arm64, and when the process's signal setup
	// does not allow fault containment.
	ErrNotSupported = errors.New("exec: native execution not supported on this platform")
	// ErrDeadline matches the error of a Call whose context expired or was
	// cancelled before or while the native code ran (see AbortError).
	ErrDeadline = errors.New("exec: native call aborted: context done")
	// ErrFault matches the error of a Call whose native code faulted (see
	// Fault).
	ErrFault = errors.New("exec: native code fault")
	// ErrClosed is returned by Call after Close.
	ErrClosed = errors.New("exec: executor closed")
	// ErrInvalid reports bad Options or a nil function pointer.
	ErrInvalid = errors.New("exec: invalid argument")
	// ErrTooMany is returned by New when too many Executors are open in
	// the process (the signal handler scans a fixed table of them).
	ErrTooMany = errors.New("exec: too many open executors")
)

// Fault describes a synchronous signal raised by native code running on one
// of the Executor's stacks. Signal has the type of golang.org/x/sys/unix's
// Signal (an alias of syscall.Signal). It matches ErrFault.
type Fault struct {
	Signal syscall.Signal
	// Code is the siginfo si_code (e.g. SEGV_MAPERR = 1, SEGV_ACCERR = 2).
	Code int32
	// PC is the address of the faulting instruction, Addr the faulting
	// address the kernel reported (the data address for SIGSEGV/SIGBUS, the
	// instruction address for SIGILL/SIGFPE/SIGTRAP).
	PC, Addr uintptr
	// Symbol and Offset locate PC when Options.Symbolize knew it.
	Symbol string
	Offset uintptr
	// StackOverflow is set when Addr lies in the guard below the native
	// stack the code ran on.
	StackOverflow bool
}

func (f *Fault) Error() string {
	what := signalName(f.Signal)
	if f.StackOverflow {
		what = "native stack overflow (" + what + ")"
	}
	loc := fmt.Sprintf("pc %#x", f.PC)
	if f.Symbol != "" {
		loc += fmt.Sprintf(" (%s+%#x)", f.Symbol, f.Offset)
	}
	return fmt.Sprintf("exec: native code fault: %s at %s, address %#x", what, loc, f.Addr)
}

// Is reports whether target is ErrFault.
func (f *Fault) Is(target error) bool { return target == ErrFault }

// AbortError is returned when a Call's context was done before or while the
// native code ran. It matches ErrDeadline and unwraps to the context's error
// (context.DeadlineExceeded or context.Canceled, or the cause).
type AbortError struct {
	// Cause is the context's error.
	Cause error
	// Started reports whether the native code had been entered; when it
	// had, PC is where it was interrupted (with Symbol/Offset if known).
	Started bool
	PC      uintptr
	Symbol  string
	Offset  uintptr
}

func (e *AbortError) Error() string {
	if !e.Started {
		return fmt.Sprintf("exec: native call not started: %v", e.Cause)
	}
	loc := fmt.Sprintf("pc %#x", e.PC)
	if e.Symbol != "" {
		loc += fmt.Sprintf(" (%s+%#x)", e.Symbol, e.Offset)
	}
	return fmt.Sprintf("exec: native call aborted at %s: %v", loc, e.Cause)
}

// Is reports whether target is ErrDeadline.
func (e *AbortError) Is(target error) bool { return target == ErrDeadline }

// Unwrap returns the context's error.
func (e *AbortError) Unwrap() error { return e.Cause }

// signalName returns the conventional name of the signals a fault can carry.
func signalName(s syscall.Signal) string {
	// Numbers are the same on linux/amd64 and linux/arm64.
	switch s {
	case 4:
		return "SIGILL"
	case 5:
		return "SIGTRAP"
	case 7:
		return "SIGBUS"
	case 8:
		return "SIGFPE"
	case 11:
		return "SIGSEGV"
	}
	return fmt.Sprintf("signal %d", int(s))
}
