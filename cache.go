package bcship

import (
	"maps"
	"sync"
	"sync/atomic"

	"github.com/bcship/bcship/bundle"
)

// image is what the cache needs of loaded code (*loader.Image).
type image interface {
	Symbol(name string) (uintptr, error)
	Contains(pc uintptr) bool
	SymbolAt(pc uintptr) (name string, off uintptr, ok bool)
	Close() error
}

// codeEntry is a loaded image in the code cache.
type codeEntry struct {
	hash bundle.Digest
	name string // the bundle's name, for logs
	img  image
	size int64

	// state counts the references (acquire) in its low bits, with
	// evictedBit set once the entry left the cache; the image is closed
	// when the count of an evicted entry reaches zero (closed makes that
	// once). lastUse orders entries for eviction: the cache's use count
	// at the entry's last acquire.
	state   atomic.Int64
	closed  atomic.Bool
	lastUse atomic.Int64

	// entries resolves entry names, copy-on-write so that the run path
	// takes no lock; recMu serializes additions. Only entries that resolve
	// get a record: their names come from the network.
	recMu   sync.Mutex
	entries atomic.Pointer[map[string]*entryRec]
	lastRec atomic.Pointer[entryRec] // the record found last: most runs repeat an entry
}

const evictedBit = 1 << 40

// unref drops one reference and closes the image of an evicted entry
// that no run uses any more.
func (e *codeEntry) unref() {
	if e.state.Add(-1) == evictedBit {
		e.close()
	}
}

func (e *codeEntry) close() {
	if e.closed.CompareAndSwap(false, true) {
		e.img.Close()
	}
}

// entryRec is what a run needs of one entry of loaded code: its address,
// and whether its last run qualified it for inline execution.
type entryRec struct {
	name  string
	fn    uintptr
	speed *speed
}

// lookup returns the record of entry name, resolving it the first time.
func (e *codeEntry) lookup(name string) (*entryRec, error) {
	if m := e.entries.Load(); m != nil {
		if r := (*m)[name]; r != nil {
			return r, nil
		}
	}
	e.recMu.Lock()
	defer e.recMu.Unlock()
	old := e.entries.Load()
	if old != nil {
		if r := (*old)[name]; r != nil {
			return r, nil
		}
	}
	a, err := e.img.Symbol(name)
	if err != nil {
		return nil, err
	}
	r := &entryRec{name: name, fn: a, speed: new(speed)}
	m := make(map[string]*entryRec, 1)
	if old != nil {
		m = maps.Clone(*old)
	}
	m[name] = r
	e.entries.Store(&m)
	return r, nil
}

// fastEntry returns entry's record if its last run qualified it for
// inline execution, else nil. It only reads: an entry that never ran has
// no record.
func (e *codeEntry) fastEntry(name string) *entryRec {
	r := e.lastRec.Load()
	if r == nil || r.name != name {
		m := e.entries.Load()
		if m == nil {
			return nil
		}
		if r = (*m)[name]; r == nil {
			return nil
		}
		e.lastRec.Store(r)
	}
	if r.speed.fast.Load() {
		return r
	}
	return nil
}

// codeCache holds loaded images by code hash, least recently used first
// out when their bytes exceed the budget. An image in use is unmapped only
// when its last user releases it.
//
// A hit, on every invocation's path, takes no lock: it looks the hash up
// in a copy-on-write map and counts its reference and use with atomics
// (with a mutex and a move to the front of a list it cost ~0.2 µs more in
// a cached invoke round trip than an active message's lookup). Additions
// and evictions, rare, copy the map under mu; eviction finds the least
// recently used entry by scanning.
type codeCache struct {
	mu        sync.Mutex
	budget    int64
	bytes     int64 // guarded by mu
	evictions uint64
	byHash    atomic.Pointer[map[bundle.Digest]*codeEntry] // replaced, never changed, under mu
	uses      atomic.Int64
	last      atomic.Pointer[codeEntry] // the entry hit last: most hits repeat it
}

func newCodeCache(budget int64) *codeCache {
	c := &codeCache{budget: budget}
	c.byHash.Store(&map[bundle.Digest]*codeEntry{})
	return c
}

// acquire returns the entry for h with a reference the caller must
// release, or nil.
func (c *codeCache) acquire(h bundle.Digest) *codeEntry {
	if e := c.last.Load(); e != nil && e.hash == h {
		if c.ref(e) {
			return e
		}
		// Evicted; the map may hold a newer load of h.
	}
	e := (*c.byHash.Load())[h]
	if e == nil || !c.ref(e) {
		return nil
	}
	c.last.Store(e)
	return e
}

// ref takes a reference to e unless it was evicted, and marks it used.
func (c *codeCache) ref(e *codeEntry) bool {
	if e.state.Add(1) >= evictedBit {
		e.unref()
		return false
	}
	// Repeated hits of the same entry leave the shared count alone.
	if n := c.uses.Load(); e.lastUse.Load() != n {
		e.lastUse.Store(c.uses.Add(1))
	}
	return true
}

func (c *codeCache) release(e *codeEntry) { e.unref() }

// fast reports whether h is cached and the last run of its entry
// qualified it for inline execution.
func (c *codeCache) fast(h bundle.Digest, entry string) bool {
	e := (*c.byHash.Load())[h]
	return e != nil && e.fastEntry(entry) != nil
}

// has reports whether h is cached.
func (c *codeCache) has(h bundle.Digest) bool {
	return (*c.byHash.Load())[h] != nil
}

// add inserts e unless h is cached already (then e's image is closed),
// and evicts the least recently used entries over the budget; the newest
// entry always stays.
func (c *codeCache) add(e *codeEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.byHash.Load()
	if old[e.hash] != nil {
		e.close()
		return
	}
	m := maps.Clone(old)
	m[e.hash] = e
	e.lastUse.Store(c.uses.Add(1))
	c.bytes += e.size
	for c.bytes > c.budget && len(m) > 1 {
		var lru *codeEntry
		for _, x := range m {
			if x != e && (lru == nil || x.lastUse.Load() < lru.lastUse.Load()) {
				lru = x
			}
		}
		c.evictLocked(m, lru)
		c.evictions++
	}
	c.byHash.Store(&m)
}

// evictLocked takes e out of m; its image closes now if no run uses it,
// else when the last one releases it. The caller holds mu and publishes m.
func (c *codeCache) evictLocked(m map[bundle.Digest]*codeEntry, e *codeEntry) {
	delete(m, e.hash)
	c.last.CompareAndSwap(e, nil)
	c.bytes -= e.size
	if e.state.Add(evictedBit) == evictedBit {
		e.close()
	}
}

func (c *codeCache) symbolAt(pc uintptr) (string, uintptr, bool) {
	for _, e := range *c.byHash.Load() {
		if e.img.Contains(pc) {
			return e.img.SymbolAt(pc)
		}
	}
	return "", 0, false
}

func (c *codeCache) stats() (bytes int64, entries int, evictions uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes, len(*c.byHash.Load()), c.evictions
}

// closeAll unmaps every image; no kernel may be running.
func (c *codeCache) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.byHash.Load()
	c.byHash.Store(&map[bundle.Digest]*codeEntry{})
	for _, e := range old {
		c.bytes -= e.size
		e.state.Add(evictedBit)
		e.close()
	}
}
