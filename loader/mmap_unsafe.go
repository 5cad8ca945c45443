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

// protect gives each segment its final protection. Code becomes
// executable only here, after every write to it is done; nothing is ever
// writable and executable at once.
func (img *Image) protect(lay layout) error {
	prots := [numSegments]int{
		segText:  unix.PROT_READ | unix.PROT_EXEC,
		segRelro: unix.PROT_READ,
		segData:  unix.PROT_READ | unix.PROT_WRITE,
	}
	for seg := segText; seg < numSegments; seg++ {
		start := lay.segStart[seg]
		end := lay.size
		if seg+1 < numSegments {
			end = lay.segStart[seg+1]
		}
		if end <= start || prots[seg] == unix.PROT_READ|unix.PROT_WRITE {
			continue // empty, or already mapped read-write
		}
		if prots[seg]&unix.PROT_WRITE != 0 && prots[seg]&unix.PROT_EXEC != 0 {
			panic("BUG: loader asked for a writable and executable mapping")
		}
		if err := unix.Mprotect(img.mem[start:end], prots[seg]); err != nil {
			return fmt.Errorf("loader: mprotect: %w", err)
		}
	}
	return nil
}
