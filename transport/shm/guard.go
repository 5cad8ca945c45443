package shm

import (
	"fmt"
	"runtime/debug"
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
		if r := recover(); r != nil {
			if fe, ok := r.(interface{ Addr() uintptr }); ok {
				err = fmt.Errorf("%w: memory fault at %#x (the segment shrank?)", ErrCorrupt, fe.Addr())
				return
			}
			panic(r)
		}
	}()
	return f()
}
