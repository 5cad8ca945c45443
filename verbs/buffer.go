package verbs

import (
	"golang.org/x/sys/unix"
)

// AllocBuffer maps n bytes of anonymous memory for registration: memory
// the Go garbage collector neither moves nor frees. Release it with
// FreeBuffer after the MR that covers it is closed.
func AllocBuffer(n int) ([]byte, error) {
	if n <= 0 {
		return nil, misuse("alloc_buffer", unix.EINVAL, ErrOutOfBounds)
	}
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, opErr("alloc_buffer", err)
	}
	return b, nil
}

// FreeBuffer unmaps a buffer from AllocBuffer.
func FreeBuffer(b []byte) error { return opErr("free_buffer", unix.Munmap(b)) }
