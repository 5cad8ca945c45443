package bcship

import (
	"container/list"
	"maps"
	"sync"
	"sync/atomic"

	"github.com/bcship/bcship/bundle"
	"github.com/bcship/bcship/loader"
)

// codeEntry is a loaded image in the code cache.
type codeEntry struct {
	hash bundle.Digest
	name string // the bundle's name, for logs
	img  *loader.Image
	size int64

	// Guarded by codeCache.mu.
	elem    *list.Element
	refs    int
	evicted bool

	// entries resolves entry names, copy-on-write so that the run path
	// takes no lock; recMu serializes additions. Only entries that resolve
	// get a record: their names come from the network.
	recMu   sync.Mutex
	entries atomic.Pointer[map[string]*entryRec]
}

// entryRec is what a run needs of one entry of loaded code: its address,
// and whether its last run qualified it for inline execution.
type entryRec struct {
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
	r := &entryRec{fn: a, speed: new(speed)}
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
	m := e.entries.Load()
	if m == nil {
		return nil
	}
	if r := (*m)[name]; r != nil && r.speed.fast.Load() {
		return r
	}
	return nil
}

// codeCache holds loaded images by code hash, least recently used first
// out when their bytes exceed the budget. An image in use is unmapped only
// when its last user releases it.
type codeCache struct {
	mu        sync.Mutex
	budget    int64
	bytes     int64
	byHash    map[bundle.Digest]*codeEntry
	lru       list.List // front = most recent
	evictions uint64
}

func newCodeCache(budget int64) *codeCache {
	return &codeCache{budget: budget, byHash: map[bundle.Digest]*codeEntry{}}
}

// acquire returns the entry for h with a reference the caller must
// release, or nil.
func (c *codeCache) acquire(h bundle.Digest) *codeEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.byHash[h]
	if e == nil {
		return nil
	}
	e.refs++
	c.lru.MoveToFront(e.elem)
	return e
}

func (c *codeCache) release(e *codeEntry) {
	c.mu.Lock()
	e.refs--
	done := e.evicted && e.refs == 0
	c.mu.Unlock()
	if done {
		e.img.Close()
	}
}

// fast reports whether h is cached and the last run of its entry
// qualified it for inline execution.
func (c *codeCache) fast(h bundle.Digest, entry string) bool {
	c.mu.Lock()
	e := c.byHash[h]
	c.mu.Unlock()
	return e != nil && e.fastEntry(entry) != nil
}

// has reports whether h is cached.
func (c *codeCache) has(h bundle.Digest) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byHash[h] != nil
}

// add inserts e unless h is cached already (then e's image is closed),
// and evicts the least recently used entries over the budget; the newest
// entry always stays.
func (c *codeCache) add(e *codeEntry) {
	c.mu.Lock()
	if c.byHash[e.hash] != nil {
		c.mu.Unlock()
		e.img.Close()
		return
	}
	c.byHash[e.hash] = e
	e.elem = c.lru.PushFront(e)
	c.bytes += e.size
	var closing []*loader.Image
	for c.bytes > c.budget && c.lru.Len() > 1 {
		old := c.lru.Back().Value.(*codeEntry)
		c.removeLocked(old)
		c.evictions++
		if old.refs == 0 {
			closing = append(closing, old.img)
		}
	}
	c.mu.Unlock()
	for _, img := range closing {
		img.Close()
	}
}

func (c *codeCache) removeLocked(e *codeEntry) {
	c.lru.Remove(e.elem)
	delete(c.byHash, e.hash)
	c.bytes -= e.size
	e.evicted = true
}

func (c *codeCache) symbolAt(pc uintptr) (string, uintptr, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.byHash {
		if e.img.Contains(pc) {
			return e.img.SymbolAt(pc)
		}
	}
	return "", 0, false
}

func (c *codeCache) stats() (bytes int64, entries int, evictions uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes, len(c.byHash), c.evictions
}

// closeAll unmaps every image; no kernel may be running.
func (c *codeCache) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.byHash {
		c.removeLocked(e)
		e.img.Close()
	}
}
