package framebuf

import (
	"bytes"
	"testing"
)

// TestArena: frames of one batch do not overlap, each is as long as asked,
// the next batch reuses the memory without allocating, and a frame that
// would pass ArenaMax gets memory of its own.
func TestArena(t *testing.T) {
	var a Arena
	x, y := a.Take(10), a.Take(20)
	copy(x, bytes.Repeat([]byte{1}, 10))
	copy(y, bytes.Repeat([]byte{2}, 20))
	if len(x) != 10 || cap(x) != 10 || len(y) != 20 || !bytes.Equal(x, bytes.Repeat([]byte{1}, 10)) {
		t.Fatalf("frames overlap or have the wrong size: %v %v", x, y)
	}
	a.Reset()
	if allocs := testing.AllocsPerRun(100, func() {
		a.Reset()
		a.Take(10)
		a.Take(20)
	}); allocs != 0 {
		t.Fatalf("%v allocations a batch after the first, want 0", allocs)
	}
	a.Reset()
	a.Take(ArenaMax - 5)
	big := a.Take(10)
	big[0] = 9
	if len(big) != 10 || len(a.b) != ArenaMax-5 {
		t.Fatalf("a frame past ArenaMax came from the arena")
	}
}
