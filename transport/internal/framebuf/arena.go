package framebuf

import "slices"

// ArenaMax bounds an Arena: frames that would take it past this get memory
// of their own.
const ArenaMax = 256 << 10

// Arena lends memory to the frames a receiver takes in one batch (a poll of
// a ring, a batch of completions), and the next batch reuses it: a received
// frame is the transport's until its handler returns (transport.Handler),
// and memory used again is memory the caches hold, where a fresh allocation
// per frame is not. The zero value is ready.
type Arena struct{ b []byte }

// Reset starts a new batch: the frames lent so far are handled.
func (a *Arena) Reset() { a.b = a.b[:0] }

// Take returns n bytes for a frame of this batch, valid until Reset.
func (a *Arena) Take(n int) []byte {
	if len(a.b)+n > ArenaMax {
		return make([]byte, n)
	}
	k := len(a.b)
	a.b = slices.Grow(a.b, n)[:k+n]
	return a.b[k : k+n : k+n]
}
