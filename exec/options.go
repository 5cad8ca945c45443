package exec

import "context"

const (
	// DefaultStackSize is the native stack size used when
	// Options.StackSize is zero.
	DefaultStackSize = 1 << 20
	// DefaultMaxStacks is the pool bound used when Options.MaxStacks is
	// zero.
	DefaultMaxStacks = 64
	// MaxStacksLimit bounds Options.MaxStacks (the stack index is part of
	// the deadline token, see token.go).
	MaxStacksLimit = 1 << 12
	// maxStackSize bounds Options.StackSize.
	maxStackSize = 1 << 30
)

// Options configures an Executor. The zero value is usable.
type Options struct {
	// StackSize is the size of each native stack in bytes, rounded up to
	// the page size; default 1 MiB, at least 64 KiB. Below every stack lies
	// a PROT_NONE guard at least 64 KiB (and as large as the stack when
	// StackSize is a power of two).
	StackSize int
	// MaxStacks bounds the number of native stacks, i.e. of concurrent
	// Calls; further Calls wait for a free stack (or their context).
	// Default 64, at most MaxStacksLimit.
	MaxStacks int
	// Context, when set, bounds every call: once it is done, the calls in
	// flight are aborted and later ones fail, with an *AbortError matching
	// ErrDeadline and its error. It is watched once for the Executor, not
	// per call (which would cost every call an AfterFunc), so it suits a
	// server's lifetime context.
	Context context.Context
	// Symbolize, when set, names the code at a faulting or interrupted PC;
	// it fills Fault.Symbol/Offset and AbortError.Symbol/Offset. It is
	// called from Call, in Go, after the native code is unwound.
	Symbolize func(pc uintptr) (name string, off uintptr, ok bool)
}
