package loader

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mapRW maps size bytes of zeroed, private, read-write memory, near the
// hint address when the kernel can, or in the low 2 GiB when low is set
// (x86_64 only; see lowMapFlag).
func mapRW(size uint64, near uintptr, low bool) ([]byte, error) {
	flags := unix.MAP_PRIVATE | unix.MAP_ANONYMOUS
	if size <= populateMax {
		// Small images are written almost entirely while linking: one
		// populate is cheaper than a fault per page. Large ones are
		// mostly .bss, which stays untouched until used.
		flags |= unix.MAP_POPULATE
	}
	if low {
		flags |= lowMapFlag
	}
	p, err := unix.MmapPtr(-1, 0, unsafe.Add(nil, near), uintptr(size),
		unix.PROT_READ|unix.PROT_WRITE, flags)
	if err != nil {
		return nil, fmt.Errorf("loader: mmap %d bytes: %w", size, err)
	}
	return unsafe.Slice((*byte)(p), size), nil
}

// populateMax is the largest image mapped with MAP_POPULATE.
const populateMax = 1 << 20

func unmap(mem []byte) error {
	if len(mem) == 0 {
		return nil
	}
	if err := unix.MunmapPtr(unsafe.Pointer(unsafe.SliceData(mem)), uintptr(len(mem))); err != nil {
		return fmt.Errorf("loader: munmap: %w", err)
	}
	return nil
}

func addrOf(mem []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(mem))) }

// protect makes the image's code and read-only data read+execute, after
// every write to them is done; writable data stays read-write. Nothing is
// ever writable and executable at once.
//
// Read-only data (with .data.rel.ro and the GOT) shares the code's
// protection rather than getting read-only pages of its own, as in the
// classic text segment. Each mprotect costs ≈4 µs on a VM, a third of
// loading a small kernel, and a separate non-executable rodata buys nothing
// against a shipped kernel, which is native code running in the process
// already; what matters, that rodata cannot be written, holds.
func (img *Image) protect(lay layout) error {
	start, end := lay.segStart[segText], lay.segStart[segData]
	if end <= start {
		return nil
	}
	if err := unix.Mprotect(img.mem[start:end], unix.PROT_READ|unix.PROT_EXEC); err != nil {
		return fmt.Errorf("loader: mprotect: %w", err)
	}
	return nil
}
