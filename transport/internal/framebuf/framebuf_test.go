package framebuf

import "testing"

// A buffer going round allocates nothing once the pool is warm.
func TestPoolRecyclesWithoutAllocating(t *testing.T) {
	var p Pool
	p.Put(p.Get())
	allocs := testing.AllocsPerRun(1000, func() {
		b := append(p.Get(), "frame"...)
		p.Put(b)
	})
	// sync.Pool may drop items at a GC; anything near one per round is the
	// boxing this pool exists to avoid.
	if allocs > 0.1 {
		t.Errorf("%.2f allocations per Get and Put", allocs)
	}
}

// Get hands out empty buffers, reusing what was Put, and lets huge ones go.
func TestPoolBuffers(t *testing.T) {
	var p Pool
	b := p.Get()
	if len(b) != 0 || cap(b) == 0 {
		t.Fatalf("new buffer: len %d cap %d", len(b), cap(b))
	}
	b = append(b, "hello"...)
	p.Put(b)
	if c := p.Get(); len(c) != 0 {
		t.Fatalf("recycled buffer has %d bytes", len(c))
	}
	huge := make([]byte, 0, maxKept+1)
	p.Put(huge)
	for range 10 {
		if c := p.Get(); cap(c) > maxKept {
			t.Fatal("a buffer over maxKept was kept")
		}
	}
}
