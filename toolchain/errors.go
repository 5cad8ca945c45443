package toolchain

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrToolNotFound reports an LLVM program that is not installed (or
	// that $BCSHIP_<TOOL> names but does not exist). See ToolError.
	ErrToolNotFound = errors.New("toolchain: tool not found")
	// ErrUnsupportedTarget reports a target triple whose architecture the
	// installed clang or llc was not built with.
	ErrUnsupportedTarget = errors.New("toolchain: target not supported")
	// ErrCompile reports a compiler, linker or llc run that failed; the
	// *CompileError carries its diagnostics verbatim.
	ErrCompile = errors.New("toolchain: compilation failed")
	// ErrNeedCrossCompile reports bitcode that this node cannot compile:
	// its llc is older than the producer, lacks the target, or is missing.
	// The origin has to cross-compile an object for the triple instead.
	ErrNeedCrossCompile = errors.New("toolchain: bitcode cannot be compiled here, the origin must cross-compile")
	// ErrEntriesDiffer reports a kernel whose BC_ENTRY functions are not
	// the same for every triple (usually an #ifdef around an entry).
	ErrEntriesDiffer = errors.New("toolchain: entries differ between triples")
	// ErrNoEntries reports a kernel without any BC_ENTRY function.
	ErrNoEntries = errors.New("toolchain: no entry points (mark them with BC_ENTRY from bcship.h)")
	// ErrBadOption reports invalid BuildOptions.
	ErrBadOption = errors.New("toolchain: bad build option")
	// ErrNotBitcode reports bytes given to CompileBitcode that are not LLVM
	// bitcode.
	ErrNotBitcode = errors.New("toolchain: not LLVM bitcode")
	// ErrNotCode reports a file that is neither a bundle nor a relocatable
	// ELF object of a known machine.
	ErrNotCode = errors.New("toolchain: not a bundle or relocatable object")
)

// ToolError reports a tool that could not be found or probed, and how to
// install it.
type ToolError struct {
	Tool    Tool
	Package string   // Debian package that provides it
	Tried   []string // names or the $BCSHIP_ path that were looked up
	Err     error    // ErrToolNotFound, or why probing a found tool failed
}

func (e *ToolError) Error() string {
	return fmt.Sprintf("toolchain: %s: %v (tried %s); install the Debian package %s: apt-get install clang lld llvm",
		e.Tool, strings.TrimPrefix(e.Err.Error(), "toolchain: "), strings.Join(e.Tried, ", "), e.Package)
}

// Unwrap returns the cause.
func (e *ToolError) Unwrap() error { return e.Err }

// TargetError reports a triple the tool was not built for.
type TargetError struct {
	Tool    Tool
	Path    string
	Triple  string
	Targets []string // what the tool supports
}

func (e *TargetError) Error() string {
	return fmt.Sprintf("toolchain: %s (%s) has no target for %s; it supports: %s",
		e.Tool, e.Path, e.Triple, strings.Join(e.Targets, " "))
}

// Is reports whether target is ErrUnsupportedTarget.
func (e *TargetError) Is(target error) bool { return target == ErrUnsupportedTarget }

// CompileError is a failed tool run. Stderr holds the tool's diagnostics
// verbatim, with their file:line locations.
type CompileError struct {
	Tool   Tool
	Input  string // source file, or a description of the inputs
	Triple string
	Args   []string
	Stderr string
	Err    error // usually an *exec.ExitError
}

func (e *CompileError) Error() string {
	msg := fmt.Sprintf("toolchain: %s failed on %s for %s: %v", e.Tool, e.Input, e.Triple, e.Err)
	if s := strings.TrimRight(e.Stderr, "\n"); s != "" {
		msg += "\n" + s
	}
	return msg
}

// Unwrap returns ErrCompile and the cause.
func (e *CompileError) Unwrap() []error { return []error{ErrCompile, e.Err} }

// NeedCrossCompileError says why bitcode cannot be compiled here. It
// matches ErrNeedCrossCompile.
type NeedCrossCompileError struct {
	Triple   string
	Producer int    // LLVM major version that produced the bitcode
	LLC      int    // local llc's major version, 0 when there is none
	Reason   string // human-readable
	Err      error  // the underlying *ToolError or *TargetError, if any
}

func (e *NeedCrossCompileError) Error() string {
	return fmt.Sprintf("%v: %s: %s", ErrNeedCrossCompile, e.Triple, e.Reason)
}

// Is reports whether target is ErrNeedCrossCompile.
func (e *NeedCrossCompileError) Is(target error) bool { return target == ErrNeedCrossCompile }

// Unwrap returns the underlying error, if any.
func (e *NeedCrossCompileError) Unwrap() error { return e.Err }

// EntriesError lists the entries found for each triple when they differ.
type EntriesError struct {
	Entries map[string][]string // triple → sorted entries
}

func (e *EntriesError) Error() string {
	var b strings.Builder
	b.WriteString(ErrEntriesDiffer.Error())
	for _, t := range sortedKeys(e.Entries) {
		fmt.Fprintf(&b, "; %s: [%s]", t, strings.Join(e.Entries[t], " "))
	}
	return b.String()
}

// Is reports whether target is ErrEntriesDiffer.
func (e *EntriesError) Is(target error) bool { return target == ErrEntriesDiffer }
