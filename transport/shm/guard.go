package shm

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// guard runs f, which touches the mapping, and turns a memory fault there
// into ErrCorrupt. The peer can shrink the segment file under us (it owns
// or may hold a descriptor to it): our next access then raises SIGBUS,
// which would crash the node; with SetPanicOnFault it panics on this
// goroutine instead, and the connection is dropped. Other panics go on.
func guard(f func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if fe, ok := r.(interface{ Addr() uintptr }); ok {
			err = fmt.Errorf("%w: memory fault at %#x (the segment shrank?)", ErrCorrupt, fe.Addr())
			return
		}
		// qemu-user reports the SIGBUS without its address, which the
		// runtime takes for a nil dereference. The guarded code only
		// reads and writes the mapping, so that is the fault too.
		if re, ok := r.(runtime.Error); ok && strings.HasPrefix(re.Error(), "runtime error: invalid memory address") {
			err = fmt.Errorf("%w: memory fault (the segment shrank?)", ErrCorrupt)
			return
		}
		panic(r)
	}()
	return f()
}
