package bcship

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bcship/bcship/bundle"
	"github.com/bcship/bcship/transport/rdma"
	"github.com/bcship/bcship/wire"
)

// Result is the outcome of an invocation, as the origin sees it.
type Result struct {
	// Node is the node whose RESULT completed the request (the end of the
	// chain, which replies straight to the origin).
	Node uint32
	// Status is the return value of the last kernel run of the chain.
	Status int64
	// Replies are the bc_reply payloads, in arrival order.
	Replies [][]byte
	// Hops counts the forwards between the origin and Node.
	Hops int
	// Elapsed is the time from sending the request to its completion.
	Elapsed time.Duration
}

// Reply returns the last reply payload, or nil when the chain sent none.
func (r *Result) Reply() []byte {
	if len(r.Replies) == 0 {
		return nil
	}
	return r.Replies[len(r.Replies)-1]
}

// call is a request waiting for its answer.
type call struct {
	id      uint64
	peer    uint32 // node the request went to
	anyPeer bool   // a chain: may have reached any node, so any death fails it
	start   time.Time
	need    *bundle.Digest // NEED_CODE: the hash asked for

	replies [][]byte
	one     [1][]byte // backing for replies: most calls get one
	// small holds the first reply when it fits: most replies are short,
	// and one kept here costs no allocation of its own.
	small [64]byte
	// wake is how the caller learns of completion: nil while pending,
	// &ch of a caller blocked on ch, &settled once complete. A caller that
	// drives polls it (Answered) and needs no channel.
	wake    atomic.Pointer[chan struct{}]
	settled chan struct{} // never used: its address marks completion
	res     *Result
	result  Result // backing for res on success: one allocation less per call
	data    []byte
	err     error
	cb      func(*call) // when set, called on completion instead of a waiter
}

// newCall makes a call to peer started at now (clock).
//
// It takes the node's spare call when there is one: a call is fresh
// memory, and making it on the request's way to the wire cost 60 ns of
// the round trip (measured against a call reused); a request that waits
// makes the next one's while its answer cannot be back yet (makeSpare).
func (n *Node) newCall(peer uint32, anyPeer bool, now time.Time) *call {
	c := n.spare.Swap(nil)
	if c == nil {
		c = new(call)
	}
	c.id, c.peer, c.anyPeer, c.start = n.reqID.Add(1), peer, anyPeer, now
	c.replies = c.one[:0]
	return c
}

// makeSpare makes the spare call newCall takes next, if there is none.
// A caller runs it after sending its request, before its wait: an answer
// takes a network round trip, so the allocation is off the critical path.
// A spare is a call never used: newCall may take it as new(call).
func (n *Node) makeSpare() {
	if n.spare.Load() == nil {
		n.spare.CompareAndSwap(nil, new(call))
	}
}

func (n *Node) register(c *call) error {
	n.pmu.Lock()
	defer n.pmu.Unlock()
	if n.closed.Load() {
		return ErrClosed
	}
	n.pending.add(c)
	return nil
}

// take removes and returns the pending call id.
func (n *Node) take(id uint64) *call {
	n.pmu.Lock()
	defer n.pmu.Unlock()
	return n.pending.remove(id)
}

// complete finishes a call taken from the pending calls.
func (c *call) complete(res *Result, data []byte, err error) {
	c.res, c.data, c.err = res, data, err
	if c.cb != nil {
		c.cb(c)
		return
	}
	if ch := c.wake.Swap(&c.settled); ch != nil {
		close(*ch)
	}
}

// keep returns a copy of reply (a RESULT's, which is the transport's) that
// c owns: in c.small for the first reply when it fits, else fresh memory.
func (c *call) keep(reply []byte) []byte {
	if len(c.replies) == 0 && len(reply) > 0 && len(reply) <= len(c.small) {
		return c.small[:copy(c.small[:], reply):len(reply)]
	}
	return bytes.Clone(reply)
}

// Answered implements transport.Answered: c is complete.
func (c *call) Answered() bool { return c.wake.Load() == &c.settled }

// block returns a channel closed once c is complete, or nil if it is.
func (c *call) block() chan struct{} {
	ch := make(chan struct{})
	if !c.wake.CompareAndSwap(nil, &ch) {
		return nil // complete
	}
	return ch
}

// finish completes pending call id, if it is still pending.
func (n *Node) finish(id uint64, res *Result, data []byte, err error) {
	if c := n.take(id); c != nil {
		c.complete(res, data, err)
	}
}

// failAll fails every pending call for which match holds.
func (n *Node) failAll(match func(*call) bool, err error) {
	n.pmu.Lock()
	cs := n.pending.removeAll(match)
	n.pmu.Unlock()
	for _, c := range cs {
		c.complete(nil, nil, err)
	}
}

// wait waits for c or ctx; on ctx it withdraws c. When the transport lets
// callers drive it, the caller first polls for the answer itself.
func (n *Node) wait(ctx context.Context, c *call) error {
	if h := n.hot.Load(); h != nil && h.drv != nil && h.drv.Drive(c.peer, c) {
		return c.err
	}
	ch := c.block()
	if ch == nil {
		return c.err
	}
	select {
	case <-ch:
		return c.err
	case <-ctx.Done():
		if n.take(c.id) == nil {
			<-ch // completed meanwhile
			return c.err
		}
		return ctx.Err()
	}
}

// stored is code this node originates: the bundle, its encoding, and the
// variants cross-compiled for other triples.
type stored struct {
	b    *bundle.Bundle
	data []byte
	// sig is the signature data was encoded with. Not b.Signature: Sign
	// replaces that, so a bundle re-signed after AddCode would look stored.
	sig *bundle.Signature

	mu       sync.Mutex
	variants map[string][]byte // triple → marshaled bundle with that object
}

// AddCode registers code for shipping and returns its hash. Invoke does
// this itself; InvokeHash needs it done first.
//
// A signature is not part of the hash: adding the same code signed
// differently replaces the stored bundle, and it is shipped again.
func (n *Node) AddCode(code *bundle.Bundle) (bundle.Digest, error) {
	m := n.lastCode.Load()
	h, ok := m.hashOf(code)
	if ok && m.stored != nil && m.gen == n.storeGen.Load() && sameSignature(m.stored.sig, code.Signature) {
		return h, nil // stored already, as the memo knows
	}
	if !ok {
		h = code.Hash()
	}
	n.smu.Lock()
	s := n.store[h]
	gen := n.storeGen.Load()
	n.smu.Unlock()
	if s == nil || !sameSignature(s.sig, code.Signature) {
		data, err := code.Marshal()
		if err != nil {
			return h, err
		}
		n.smu.Lock()
		if s = n.store[h]; s == nil || !sameSignature(s.sig, code.Signature) {
			s = &stored{b: code, data: data, sig: code.Signature}
			n.store[h] = s
			n.storeGen.Add(1)
			// Shipped before under another signature: ship again.
			for peer, hs := range *n.known.Load() {
				if hs[h] {
					n.setKnown(peer, func(k map[bundle.Digest]bool) { delete(k, h) })
				}
			}
		}
		gen = n.storeGen.Load()
		n.smu.Unlock()
	}
	n.lastCode.Store(memoize(code, h, s, gen))
	return h, nil
}

// codeMemo remembers the hash of the bundle added last, so that Invoke
// called again with the same *Bundle does not encode and hash its manifest
// again (JSON and SHA-256: ~1.3 µs and 6 allocations, a quarter of a
// cached invoke over shared memory). It keeps a copy of every manifest
// field the hash covers (all but the signature; TestCodeMemoFields pins
// the list) and answers only while they are unchanged.
//
// It also stands for the store lookup: stored is what the store held for
// the hash at generation gen of Node.storeGen.
type codeMemo struct {
	b      *bundle.Bundle
	m      bundle.Manifest
	hash   bundle.Digest
	stored *stored
	gen    uint64
}

func memoize(b *bundle.Bundle, h bundle.Digest, s *stored, gen uint64) *codeMemo {
	m := &codeMemo{b: b, m: b.Manifest, hash: h, stored: s, gen: gen}
	m.m.Entries = slices.Clone(b.Manifest.Entries)
	m.m.Objects = slices.Clone(b.Manifest.Objects)
	if bc := b.Manifest.Bitcode; bc != nil {
		c := *bc
		m.m.Bitcode = &c
	}
	m.m.Signature = nil
	return m
}

// hashOf returns b's hash if m knows it.
func (m *codeMemo) hashOf(b *bundle.Bundle) (bundle.Digest, bool) {
	if m == nil || m.b != b {
		return bundle.Digest{}, false
	}
	x, y := &m.m, &b.Manifest
	same := x.Format == y.Format && x.Name == y.Name && x.LLVMVersion == y.LLVMVersion &&
		x.Created.Unix() == y.Created.Unix() && slices.Equal(x.Entries, y.Entries) &&
		slices.Equal(x.Objects, y.Objects) &&
		(x.Bitcode == nil) == (y.Bitcode == nil) && (x.Bitcode == nil || *x.Bitcode == *y.Bitcode)
	return m.hash, same
}

func sameSignature(a, b *bundle.Signature) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.PublicKey.Equal(b.PublicKey) && bytes.Equal(a.Value, b.Value)
}

func (n *Node) lookupStore(h bundle.Digest) *stored {
	n.smu.Lock()
	defer n.smu.Unlock()
	return n.store[h]
}

// Ship sends code to node now, so a later invocation finds it cached
// there. Invoke ships by itself when it believes the node lacks the code;
// Ship is for warming caches ahead of time.
func (n *Node) Ship(ctx context.Context, node uint32, code *bundle.Bundle) error {
	h, err := n.AddCode(code)
	if err != nil {
		return err
	}
	if node == n.cfg.ID {
		return n.installLocal(h)
	}
	return n.shipTo(node, h, 0)
}

func (n *Node) shipTo(node uint32, h bundle.Digest, req uint64) error {
	s := n.lookupStore(h)
	if s == nil {
		return fmt.Errorf("%w: %s was never added on this node", ErrUnknownCode, h)
	}
	n.stats.ships.Add(1)
	n.stats.shipBytes.Add(uint64(len(s.data)))
	n.markKnown(node, h)
	return n.send(node, wire.Header{RequestID: req}, &wire.Ship{Hash: h, Bundle: s.data})
}

// knownSet is where code has been shipped: peer → hashes. A published set
// is never changed; setKnown replaces it.
type knownSet map[uint32]map[bundle.Digest]bool

// setKnown publishes a copy of the known set with peer's hashes changed by
// edit (nil: peer forgotten). The caller holds smu.
func (n *Node) setKnown(peer uint32, edit func(map[bundle.Digest]bool)) {
	old := *n.known.Load()
	ks := maps.Clone(old)
	if edit == nil {
		delete(ks, peer)
	} else {
		hs := maps.Clone(old[peer])
		if hs == nil {
			hs = map[bundle.Digest]bool{}
		}
		edit(hs)
		ks[peer] = hs
	}
	n.known.Store(&ks)
}

func (n *Node) markKnown(node uint32, h bundle.Digest) {
	if (*n.known.Load())[node][h] {
		return
	}
	n.smu.Lock()
	defer n.smu.Unlock()
	n.setKnown(node, func(k map[bundle.Digest]bool) { k[h] = true })
}

// mustShip reports whether this node has h to ship and node is not known
// to have it.
func (n *Node) mustShip(node uint32, h bundle.Digest) bool {
	ks := n.known.Load()
	if m := n.shipMemo.Load(); m != nil && m.set == ks && m.node == node && m.hash == h {
		return false
	}
	if (*ks)[node][h] {
		// Remembered until the known set changes: repeated requests to a
		// node compare a hash where two map lookups hash it (~20 ns a
		// request). Only a missing or stale memo is replaced, so callers
		// that alternate between nodes do not allocate one per request.
		if m := n.shipMemo.Load(); m == nil || m.set != ks {
			n.shipMemo.Store(&knownMemo{set: ks, node: node, hash: h})
		}
		return false
	}
	return n.lookupStore(h) != nil
}

// knownMemo is a check mustShip answered from set: node has hash.
type knownMemo struct {
	set  *knownSet
	node uint32
	hash bundle.Digest
}

// Invoke runs entry of code on node with arg and waits for the result of
// the whole chain. The first time, the code travels with the request; later
// invocations send only its hash. ctx's deadline, if any, bounds the chain
// at every node; cancelling ctx abandons the request.
func (n *Node) Invoke(ctx context.Context, node uint32, code *bundle.Bundle, entry string, arg []byte) (*Result, error) {
	h, err := n.AddCode(code)
	if err != nil {
		return nil, err
	}
	return n.InvokeHash(ctx, node, h, entry, arg)
}

// InvokeHash is Invoke for code added with AddCode (or cached at node).
func (n *Node) InvokeHash(ctx context.Context, node uint32, h bundle.Digest, entry string, arg []byte) (*Result, error) {
	if entry == "" || len(entry) > wire.MaxString {
		return nil, fmt.Errorf("%w: entry name of %d bytes", ErrConfig, len(entry))
	}
	if _, err := n.transport(); err != nil && node != n.cfg.ID {
		return nil, err
	}
	now := clock() // one clock read for the whole request
	n.connectPeers(ctx, now)
	c := n.newCall(node, true, now)
	if err := n.register(c); err != nil {
		return nil, err
	}
	j := job{hash: h, entry: entry, arg: arg, origin: n.cfg.ID, req: c.id, ttl: n.cfg.DefaultTTL, from: n.cfg.ID}
	if dl, ok := ctx.Deadline(); ok {
		j.expires = dl
	}
	if node == n.cfg.ID {
		if err := n.installLocal(h); err != nil && !n.cache.has(h) {
			n.take(c.id)
			return nil, err
		}
		hj := j
		n.goRun(func() { n.execute(&hj, time.Time{}) })
	} else {
		if n.mustShip(node, h) {
			// Pipelined ahead of the INVOKE on the same connection; the
			// node installs it before it reads the INVOKE.
			if err := n.shipTo(node, h, 0); err != nil {
				n.take(c.id)
				return nil, err
			}
		}
		m := invokeMsgs.get()
		j.fillInvoke(m, now)
		err := n.send(node, wire.Header{RequestID: c.id}, m)
		invokeMsgs.put(m)
		if err != nil {
			n.take(c.id)
			return nil, err
		}
		n.makeSpare()
	}
	if err := n.wait(ctx, c); err != nil {
		return nil, err
	}
	return c.res, nil
}

// CallAM runs the active-message handler registered as handler on node
// (RegisterAM there) with arg: the same path as InvokeHash, minus shipping.
func (n *Node) CallAM(ctx context.Context, node uint32, handler string, arg []byte) (*Result, error) {
	if handler == "" || len(handler) > wire.MaxString {
		return nil, fmt.Errorf("%w: handler name of %d bytes", ErrConfig, len(handler))
	}
	now := clock()
	c := n.newCall(node, true, now)
	if err := n.register(c); err != nil {
		return nil, err
	}
	if node == n.cfg.ID {
		j := &job{am: handler, arg: arg, origin: n.cfg.ID, req: c.id, ttl: n.cfg.DefaultTTL, from: n.cfg.ID}
		n.goRun(func() { n.execute(j, time.Time{}) })
	} else {
		n.connectPeers(ctx, now)
		m := amMsgs.get()
		*m = wire.AM{Handler: handler, Origin: n.cfg.ID, OriginRequest: c.id, TTL: n.cfg.DefaultTTL, Arg: arg}
		err := n.send(node, wire.Header{RequestID: c.id}, m)
		amMsgs.put(m)
		if err != nil {
			n.take(c.id)
			return nil, err
		}
		n.makeSpare()
	}
	if err := n.wait(ctx, c); err != nil {
		return nil, err
	}
	return c.res, nil
}

// Get reads length bytes at offset off of region on node.
func (n *Node) Get(ctx context.Context, node uint32, region string, off uint64, length uint32) ([]byte, error) {
	if node == n.cfg.ID {
		d, code, text := n.regions.Load().slice(region, off, uint64(length))
		if code != wire.CodeOK {
			return nil, &RemoteError{Node: node, Code: code, Text: text}
		}
		return append([]byte(nil), d...), nil
	}
	if length > 0 {
		buf := make([]byte, length)
		if done, err := n.oneSided(ctx, node, region, off, buf, false); done {
			if err != nil {
				return nil, err
			}
			return buf, nil
		}
	}
	c := n.newCall(node, false, clock())
	if err := n.register(c); err != nil {
		return nil, err
	}
	if err := n.send(node, wire.Header{RequestID: c.id}, &wire.Get{Region: region, Offset: off, Length: length}); err != nil {
		n.take(c.id)
		return nil, err
	}
	if err := n.wait(ctx, c); err != nil {
		return nil, err
	}
	return c.data, nil
}

// Put writes data at offset off of region on node.
func (n *Node) Put(ctx context.Context, node uint32, region string, off uint64, data []byte) error {
	if node == n.cfg.ID {
		d, code, text := n.regions.Load().slice(region, off, uint64(len(data)))
		if code != wire.CodeOK {
			return &RemoteError{Node: node, Code: code, Text: text}
		}
		copy(d, data)
		return nil
	}
	if len(data) > 0 {
		if done, err := n.oneSided(ctx, node, region, off, data, true); done {
			return err
		}
	}
	c := n.newCall(node, false, clock())
	if err := n.register(c); err != nil {
		return err
	}
	if err := n.send(node, wire.Header{RequestID: c.id}, &wire.Put{Region: region, Offset: off, Data: data}); err != nil {
		n.take(c.id)
		return err
	}
	return n.wait(ctx, c)
}

// oneSided reads (or, with write, writes) buf at off of region on node
// through the transport's one-sided path, when it has one. done false
// means: use GET/PUT messages. That is the case when node is not reached
// over RDMA, and when the access does not fit the region table node
// advertised to us: the table may be stale (a region registered or resized
// a moment ago), and the message path gives the authoritative answer with
// the same typed errors as over TCP.
func (n *Node) oneSided(ctx context.Context, node uint32, region string, off uint64, buf []byte, write bool) (done bool, err error) {
	n.trMu.RLock()
	one := n.one
	n.trMu.RUnlock()
	if one == nil || n.closed.Load() {
		return false, nil
	}
	if write {
		err = one.Write(ctx, node, region, off, buf)
	} else {
		err = one.Read(ctx, node, region, off, buf)
	}
	var re *rdma.RegionError
	if errors.Is(err, rdma.ErrNoRDMA) || errors.As(err, &re) {
		return false, nil
	}
	return true, err
}

// Ping measures the round trip to node (an empty GET, which every node
// answers with an empty GET_REPLY).
func (n *Node) Ping(ctx context.Context, node uint32) (time.Duration, error) {
	t0 := time.Now()
	if _, err := n.Get(ctx, node, "", 0, 0); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

// connectPeers dials every configured peer once, in parallel, so that nodes
// a chain reaches can send their RESULT back over our connection even when
// they do not know our address. Later calls only re-dial in the background.
// now is the caller's clock.
func (n *Node) connectPeers(ctx context.Context, now time.Time) {
	t, err := n.transport()
	if err != nil {
		return
	}
	first := false
	n.connectOnce.Do(func() { first = true })
	// Later calls look for lost peers at most every 100ms: this is on
	// every request's path.
	at := now.Sub(clockEpoch).Nanoseconds()
	if last := n.lastConnect.Load(); !first && at-last < int64(100*time.Millisecond) {
		return
	} else if !n.lastConnect.CompareAndSwap(last, at) && !first {
		return
	}
	connected := map[uint32]bool{}
	for _, p := range t.Peers() {
		connected[p.ID] = p.Connected
	}
	var wg sync.WaitGroup
	for _, id := range n.peerIDs() {
		if connected[id] {
			continue
		}
		if !first {
			n.goRun(func() { t.Connect(id) })
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := t.Connect(id); err != nil {
				n.log.Debug("peer unreachable", "peer", id, "err", err)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// deadlineMS is the wire encoding of the time left from now until t (0:
// none); false when t has passed.
func deadlineMS(t, now time.Time) (uint32, bool) {
	if t.IsZero() {
		return 0, true
	}
	left := t.Sub(now)
	if left <= 0 {
		return 0, false
	}
	return uint32(min(max(left.Milliseconds(), 1), math.MaxUint32)), true
}
