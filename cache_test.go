package bcship

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/bcship/bcship/bundle"
)

// fakeImage counts its closes.
type fakeImage struct{ closes atomic.Int32 }

func (f *fakeImage) Symbol(string) (uintptr, error)           { return 0, fmt.Errorf("no symbols") }
func (f *fakeImage) Contains(uintptr) bool                    { return false }
func (f *fakeImage) SymbolAt(uintptr) (string, uintptr, bool) { return "", 0, false }
func (f *fakeImage) Close() error                             { f.closes.Add(1); return nil }

func fakeEntry(i byte, size int64) (*codeEntry, *fakeImage) {
	img := &fakeImage{}
	return &codeEntry{hash: bundle.Digest{i}, img: img, size: size}, img
}

// TestCacheEvictsLeastRecentlyUsed: over its budget the cache drops the
// entry acquired longest ago, never the newest, and closes its image.
func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	c := newCodeCache(300)
	var imgs []*fakeImage
	for i := range byte(3) {
		e, img := fakeEntry(i, 100)
		c.add(e)
		imgs = append(imgs, img)
	}
	c.release(c.acquire(bundle.Digest{0})) // 1 is now the least recent
	e3, img3 := fakeEntry(3, 100)
	c.add(e3)
	if c.has(bundle.Digest{1}) || !c.has(bundle.Digest{0}) || !c.has(bundle.Digest{2}) || !c.has(bundle.Digest{3}) {
		t.Fatal("evicted the wrong entry")
	}
	if imgs[1].closes.Load() != 1 || imgs[0].closes.Load()+imgs[2].closes.Load()+img3.closes.Load() != 0 {
		t.Fatal("closed the wrong images")
	}
	if b, n, ev := c.stats(); b != 300 || n != 3 || ev != 1 {
		t.Fatalf("stats %d bytes, %d entries, %d evictions", b, n, ev)
	}
	big, bigImg := fakeEntry(9, 1000) // over the budget alone: stays, all else goes
	c.add(big)
	if _, n, _ := c.stats(); n != 1 || !c.has(bundle.Digest{9}) || bigImg.closes.Load() != 0 {
		t.Fatal("the newest entry did not stay alone")
	}
	dup, dupImg := fakeEntry(9, 1000)
	c.add(dup)
	if dupImg.closes.Load() != 1 || c.acquire(bundle.Digest{9}) != big {
		t.Fatal("a second image of a cached hash was kept")
	}
}

// TestCacheClosesInUseImageAtLastRelease: an evicted image stays mapped
// while a run holds it, is closed once when the last lets go, and cannot
// be acquired once evicted.
func TestCacheClosesInUseImageAtLastRelease(t *testing.T) {
	c := newCodeCache(100)
	e, img := fakeEntry(1, 100)
	c.add(e)
	a, b := c.acquire(bundle.Digest{1}), c.acquire(bundle.Digest{1})
	if a != e || b != e {
		t.Fatal("acquire missed")
	}
	c.add(func() *codeEntry { x, _ := fakeEntry(2, 100); return x }()) // evicts 1
	if c.acquire(bundle.Digest{1}) != nil {
		t.Fatal("acquired an evicted entry")
	}
	c.release(a)
	if img.closes.Load() != 0 {
		t.Fatal("closed while a run still held it")
	}
	c.release(b)
	if img.closes.Load() != 1 {
		t.Fatalf("closed %d times after the last release, want 1", img.closes.Load())
	}
}

// TestCacheConcurrent: hits, additions and evictions at once (run with
// -race); every image is closed exactly once when the cache closes, and
// none while a run holds it.
func TestCacheConcurrent(t *testing.T) {
	c := newCodeCache(400)
	var mu sync.Mutex
	var all []*fakeImage
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if e := c.acquire(bundle.Digest{byte((i + w) % 16)}); e != nil {
					if e.closed.Load() {
						t.Error("acquired a closed image")
					}
					c.release(e)
				}
			}
		}()
	}
	for i := range 2000 {
		e, img := fakeEntry(byte(i%16), 100)
		mu.Lock()
		all = append(all, img)
		mu.Unlock()
		c.add(e)
	}
	close(stop)
	wg.Wait()
	c.closeAll()
	for i, img := range all {
		if n := img.closes.Load(); n != 1 {
			t.Fatalf("image %d closed %d times", i, n)
		}
	}
}

// TestCacheReloadAfterEviction: code evicted and loaded again is found,
// though the entry hit last was the evicted one.
func TestCacheReloadAfterEviction(t *testing.T) {
	c := newCodeCache(100)
	old, _ := fakeEntry(1, 100)
	c.add(old)
	c.release(c.acquire(bundle.Digest{1}))
	other, _ := fakeEntry(2, 100)
	c.add(other) // evicts 1
	again, _ := fakeEntry(1, 100)
	c.add(again) // evicts 2
	e := c.acquire(bundle.Digest{1})
	if e != again {
		t.Fatalf("acquire after reload = %p, want the new entry %p (old %p)", e, again, old)
	}
	c.release(e)
	if e := c.acquire(bundle.Digest{2}); e != nil {
		t.Fatal("acquired an evicted entry")
	}
}
