package loader

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrFormat reports a truncated or inconsistent ELF object.
	ErrFormat = errors.New("loader: malformed ELF object")
	// ErrNotRelocatable reports an ELF file that is not ET_REL (an
	// executable or a shared object).
	ErrNotRelocatable = errors.New("loader: not a relocatable object (ET_REL)")
	// ErrMachine reports an object for an architecture the loader does not
	// support, or not the host's when mapping it for execution.
	ErrMachine = errors.New("loader: unsupported machine")
	// ErrUnresolved reports undefined symbols the SymbolTable does not have.
	ErrUnresolved = errors.New("loader: unresolved symbol")
	// ErrUnknownRelocation reports a relocation type the loader does not
	// implement.
	ErrUnknownRelocation = errors.New("loader: unsupported relocation type")
	// ErrOutOfRange reports a relocation whose value does not fit its field.
	ErrOutOfRange = errors.New("loader: relocation out of range")
	// ErrTLS reports thread-local storage, which shipped code cannot have.
	ErrTLS = errors.New("loader: thread-local storage is not supported")
	// ErrStaticConstructor reports .init_array/.ctors content: nothing would
	// run it, so the object would start in a state its author did not expect.
	ErrStaticConstructor = errors.New("loader: static constructors are not supported")
	// ErrNoSymbol reports a symbol the image does not define.
	ErrNoSymbol = errors.New("loader: no such symbol")
	// ErrClosed reports use of an image after Close.
	ErrClosed = errors.New("loader: image closed")
)

// UnresolvedError lists every undefined symbol of an object that the
// SymbolTable could not resolve. It matches ErrUnresolved.
type UnresolvedError struct {
	Names []string
}

func (e *UnresolvedError) Error() string {
	return fmt.Sprintf("loader: unresolved symbol(s): %s", strings.Join(e.Names, ", "))
}

// Is reports whether target is ErrUnresolved.
func (e *UnresolvedError) Is(target error) bool { return target == ErrUnresolved }

// RelocationError describes a relocation that could not be applied.
type RelocationError struct {
	Type    string // e.g. "R_X86_64_PC32"
	Section string // section being patched
	Offset  uint64 // offset of the patched field in that section
	Symbol  string // symbol the relocation refers to, if any
	Err     error  // ErrUnknownRelocation, ErrOutOfRange, ErrFormat or ErrTLS
}

func (e *RelocationError) Error() string {
	sym := ""
	if e.Symbol != "" {
		sym = " against " + e.Symbol
	}
	return fmt.Sprintf("%v: %s at %s+%#x%s", e.Err, e.Type, e.Section, e.Offset, sym)
}

func (e *RelocationError) Unwrap() error { return e.Err }

// formatErr wraps ErrFormat with what was wrong.
func formatErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrFormat, fmt.Sprintf(format, args...))
}
