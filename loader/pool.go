package loader

import (
	"sync"

	"golang.org/x/sys/unix"
)

// Pool recycles the memory of closed images. A node that loads and evicts
// kernels all day would otherwise pay, per load, for mmap, a page fault per
// page and munmap with its TLB shootdown; on small images those cost more
// than linking. A pooled mapping goes back to read-write and is zeroed on
// Close, so a reused one is indistinguishable from a fresh one.
//
// A Pool is safe for concurrent use. Close it after every image that uses
// it is closed.
type Pool struct {
	mu     sync.Mutex
	free   map[uint64][][]byte // by mapping size
	held   uint64              // bytes in free
	max    uint64
	closed bool
}

// NewPool returns a pool that keeps at most maxBytes of closed images'
// memory for reuse.
func NewPool(maxBytes uint64) *Pool {
	return &Pool{free: map[uint64][][]byte{}, max: maxBytes}
}

// get returns a zeroed read-write mapping of exactly size bytes, or nil.
func (p *Pool) get(size uint64) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.free[size]
	if len(l) == 0 {
		return nil
	}
	m := l[len(l)-1]
	p.free[size] = l[:len(l)-1]
	p.held -= size
	return m
}

// put takes back an image's mapping, or unmaps it when the pool is full.
func (p *Pool) put(mem []byte) error {
	// Back to read-write first: the code pages are read+execute now.
	if err := unix.Mprotect(mem, unix.PROT_READ|unix.PROT_WRITE); err != nil {
		return unmap(mem)
	}
	clear(mem)
	size := uint64(len(mem))
	p.mu.Lock()
	if p.closed || p.held+size > p.max {
		p.mu.Unlock()
		return unmap(mem)
	}
	p.free[size] = append(p.free[size], mem)
	p.held += size
	p.mu.Unlock()
	return nil
}

// Close unmaps the pooled memory. Images closed later unmap theirs.
func (p *Pool) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	var first error
	for size, l := range p.free {
		for _, m := range l {
			if err := unmap(m); err != nil && first == nil {
				first = err
			}
		}
		delete(p.free, size)
	}
	p.held = 0
	return first
}
