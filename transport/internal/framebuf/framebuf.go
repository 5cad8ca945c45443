package framebuf

import "sync"

// maxKept is the largest buffer a Pool keeps: larger ones (a SHIP of a
// big object) are let go rather than pinned.
const maxKept = 1 << 20

// Pool recycles frame buffers: most frames are small and short-lived.
// The zero Pool is ready to use.
//
// A sync.Pool holds pointers, and boxing a slice for Put allocates. The
// boxes emptied by Get are kept for Put to refill, so a buffer going round
// (a frame encoded, written, recycled) allocates nothing: at one frame per
// direction of every round trip, a box each time was a fresh cache line
// per message.
type Pool struct {
	full  sync.Pool // *[]byte holding a buffer
	empty sync.Pool // *[]byte emptied by Get
}

// Get returns an empty buffer.
func (p *Pool) Get() []byte {
	if box, ok := p.full.Get().(*[]byte); ok {
		b := (*box)[:0]
		*box = nil
		p.empty.Put(box)
		return b
	}
	return make([]byte, 0, 512)
}

// Put gives b back for a later Get; b must not be used after.
func (p *Pool) Put(b []byte) {
	if cap(b) > maxKept {
		return
	}
	box, ok := p.empty.Get().(*[]byte)
	if !ok {
		box = new([]byte)
	}
	*box = b[:0]
	p.full.Put(box)
}
