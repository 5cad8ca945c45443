package framebuf

import "sync"

// maxKept is the largest buffer a Pool keeps: larger ones (a SHIP of a
// big object) are let go rather than pinned.
const maxKept = 1 << 20

// Pool recycles frame buffers: most frames are small and short-lived.
// The zero Pool is ready to use.
type Pool struct {
	p sync.Pool // *[]byte
}

// Get returns an empty buffer.
func (p *Pool) Get() []byte {
	if b, ok := p.p.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, 512)
}

// Put gives b back for a later Get; b must not be used after.
func (p *Pool) Put(b []byte) {
	if cap(b) > maxKept {
		return
	}
	b = b[:0]
	p.p.Put(&b)
}
