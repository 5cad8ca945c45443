package bcship

import (
	"fmt"
	"time"

	"github.com/bcship/bcship/bundle"
	"github.com/bcship/bcship/loader"
	"github.com/bcship/bcship/wire"
)

// rejectTTL is how long a node remembers code it refused, so that an
// INVOKE pipelined behind a refused SHIP fails instead of asking again.
const rejectTTL = 30 * time.Second

// rejection is code this node refused to load.
type rejection struct {
	code  wire.ErrorCode
	text  string
	at    time.Time
	asked bool // NEED_CODE with our triple already sent once
}

// park queues j until its code arrives and asks the origin for it.
func (n *Node) park(j *job) {
	n.wmu.Lock()
	if r := n.rejected[j.hash]; r != nil && time.Since(r.at) < rejectTTL {
		// A bundle without our triple may still come back cross-compiled
		// by the origin, once; anything else stays refused.
		if r.code != wire.CodeNoTriple || r.asked {
			code, text := r.code, r.text // codeArrived rewrites r under wmu
			n.wmu.Unlock()
			n.fail(j, code, text)
			return
		}
		r.asked = true
	}
	first := len(n.waiting[j.hash]) == 0
	pj := *j // j is the caller's, maybe on its stack
	n.waiting[j.hash] = append(n.waiting[j.hash], &pj)
	n.wmu.Unlock()
	if first {
		n.requestCode(j.hash, j.origin)
	}
}

// requestCode sends NEED_CODE to origin; waiters fail if it answers with
// ERROR, dies, or sends nothing within the deadline.
func (n *Node) requestCode(h bundle.Digest, origin uint32) {
	if origin == n.cfg.ID {
		err := n.installLocal(h)
		n.codeArrived(h, err)
		return
	}
	c := n.newCall(origin, false, clock())
	c.need = &h
	c.cb = func(c *call) {
		if c.err != nil {
			n.codeArrived(h, c.err)
		}
	}
	if err := n.register(c); err != nil {
		return
	}
	time.AfterFunc(n.cfg.Deadline, func() {
		n.finish(c.id, nil, nil, &RemoteError{Node: origin, Code: wire.CodeUnknownCode,
			Text: fmt.Sprintf("node %d asked node %d for code %s and got none within %v", n.cfg.ID, origin, h, n.cfg.Deadline)})
	})
	n.stats.needCode.Add(1)
	if err := n.send(origin, wire.Header{RequestID: c.id}, &wire.NeedCode{Hash: h, Triple: n.triple}); err != nil {
		n.finish(c.id, nil, nil, err)
	}
}

// codeArrived runs (err == nil) or fails the invocations waiting for h.
func (n *Node) codeArrived(h bundle.Digest, err error) {
	n.wmu.Lock()
	ws := n.waiting[h]
	delete(n.waiting, h)
	if err != nil {
		r := n.rejected[h]
		if r == nil {
			r = &rejection{}
			n.rejected[h] = r
		}
		r.code, r.text, r.at = codeOf(err), err.Error(), time.Now()
	} else {
		delete(n.rejected, h)
	}
	n.wmu.Unlock()
	for _, j := range ws {
		if err != nil {
			n.goRun(func() { n.fail(j, codeOf(err), err.Error()) })
		} else {
			n.goRun(func() { n.execute(j, time.Time{}) })
		}
	}
}

// handleShip installs shipped code and releases the invocations waiting
// for it.
func (n *Node) handleShip(from uint32, hd wire.Header, m *wire.Ship) {
	n.stats.shipsRecv.Add(1)
	if hd.RequestID != 0 {
		// The answer to our NEED_CODE: withdraw its timeout.
		n.pmu.Lock()
		if c := n.pending.get(hd.RequestID); c != nil && c.need != nil && *c.need == bundle.Digest(m.Hash) {
			n.pending.remove(hd.RequestID)
		}
		n.pmu.Unlock()
	}
	err := n.install(m.Hash, m.Bundle)
	if err != nil {
		n.log.Warn("shipped code refused", "from", from, "code", bundle.Digest(m.Hash).String()[:12], "err", err)
	}
	n.codeArrived(m.Hash, err)
	if err != nil {
		// Whoever sent this may be able to cross-compile: let the next
		// invocation ask once more.
		n.wmu.Lock()
		if r := n.rejected[m.Hash]; r != nil {
			r.asked = false
		}
		n.wmu.Unlock()
	}
}

// install verifies and loads a shipped bundle under hash h. h is normally
// the bundle's own hash; a bundle the origin cross-compiled for this
// node's triple keeps the hash the invocations name.
func (n *Node) install(h bundle.Digest, data []byte) error {
	if n.cache.has(h) {
		return nil
	}
	b, err := bundle.Read(data)
	if err != nil {
		return err
	}
	if !n.cfg.Insecure {
		if err := b.Verify(n.cfg.Trust); err != nil {
			return err
		}
	}
	return n.load(h, b)
}

// installLocal loads code this node originates, without a signature check.
func (n *Node) installLocal(h bundle.Digest) error {
	if n.cache.has(h) {
		return nil
	}
	s := n.lookupStore(h)
	if s == nil {
		return &RemoteError{Node: n.cfg.ID, Code: wire.CodeUnknownCode, Text: fmt.Sprintf("code %s was never added here", h)}
	}
	return n.load(h, s.b)
}

// load picks or compiles the object for this node's triple and caches it.
func (n *Node) load(h bundle.Digest, b *bundle.Bundle) error {
	obj, err := n.objectFor(b)
	if err != nil {
		return err
	}
	img, err := loader.Load(obj, n.rt)
	if err != nil {
		return err
	}
	n.cache.add(&codeEntry{hash: h, name: b.Name, img: img, size: int64(img.Size())})
	n.log.Debug("code loaded", "code", h.String()[:12], "name", b.Name, "bytes", img.Size())
	return nil
}

// objectFor returns b's object for this node, compiling the bitcode when
// there is no object and this node has a toolchain.
func (n *Node) objectFor(b *bundle.Bundle) ([]byte, error) {
	if obj, ok := b.Object(n.triple); ok {
		return obj, nil
	}
	have := make([]string, 0, len(b.Objects))
	for _, o := range b.Objects {
		have = append(have, o.Triple)
	}
	bc, ok := b.Bitcode()
	switch {
	case !ok:
		return nil, fmt.Errorf("%w: %s has objects for %v and no bitcode", ErrNoTriple, n.triple, have)
	case n.cfg.Toolchain == nil:
		return nil, fmt.Errorf("%w: %s: no object, and no toolchain here for the bitcode", ErrNoTriple, n.triple)
	}
	obj, err := n.cfg.Toolchain.CompileBitcode(n.ctx, bc, n.triple, b.LLVMVersion)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoTriple, err)
	}
	return obj, nil
}

// handleNeedCode answers a node that lacks code this node originates.
func (n *Node) handleNeedCode(from uint32, hd wire.Header, m *wire.NeedCode) {
	s := n.lookupStore(m.Hash)
	if s == nil {
		n.reply(from, hd, wire.NewError(wire.CodeUnknownCode, hd.RequestID,
			fmt.Sprintf("node %d has no code %s to ship", n.cfg.ID, bundle.Digest(m.Hash))))
		return
	}
	data, err := n.codeFor(s, m.Triple, from)
	if err != nil {
		n.reply(from, hd, wire.NewError(codeOf(err), hd.RequestID, err.Error()))
		return
	}
	// Counted before sending: the answer may come back before Send returns.
	n.stats.ships.Add(1)
	n.stats.shipBytes.Add(uint64(len(data)))
	n.markKnown(from, m.Hash)
	if err := n.send(from, wire.Header{RequestID: hd.RequestID}, &wire.Ship{Hash: m.Hash, Bundle: data}); err != nil {
		n.log.Debug("SHIP undeliverable", "peer", from, "err", err)
	}
}

// codeFor returns the bundle to ship to a node of triple: the original when
// it has that object or the node can compile the bitcode itself, else a
// variant this node cross-compiles (and signs, with Config.SigningKey).
func (n *Node) codeFor(s *stored, triple string, peer uint32) ([]byte, error) {
	if _, ok := s.b.Object(triple); ok {
		return s.data, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v := s.variants[triple]; v != nil {
		return v, nil
	}
	bc, hasBC := s.b.Bitcode()
	if !hasBC {
		return nil, fmt.Errorf("%w: %s (the bundle has no bitcode to compile)", ErrNoTriple, triple)
	}
	if n.peerCanCompile(peer, s.b.LLVMVersion) {
		return s.data, nil
	}
	tc := n.cfg.Toolchain
	if tc == nil {
		return nil, fmt.Errorf("%w: %s: node %d cannot compile the bitcode and node %d has no toolchain to cross-compile", ErrNoTriple, triple, peer, n.cfg.ID)
	}
	obj, err := tc.CompileBitcode(n.ctx, bc, triple, s.b.LLVMVersion)
	if err != nil {
		return nil, fmt.Errorf("%w: cross-compiling for %s: %w", ErrNoTriple, triple, err)
	}
	v, err := bundle.Read(s.data) // a copy to add the object to
	if err != nil {
		return nil, err
	}
	v.AddObject(triple, obj)
	if k := n.cfg.SigningKey; k != nil {
		if err := v.Sign(k); err != nil {
			return nil, err
		}
	}
	data, err := v.Marshal()
	if err != nil {
		return nil, err
	}
	if s.variants == nil {
		s.variants = map[string][]byte{}
	}
	s.variants[triple] = data
	n.log.Info("cross-compiled code for a peer", "peer", peer, "triple", triple, "code", s.b.Hash().String()[:12])
	return data, nil
}

// peerCanCompile reports whether peer announced an llc new enough for
// bitcode from LLVM producer.
func (n *Node) peerCanCompile(peer uint32, producer int) bool {
	for _, p := range n.Peers() {
		if p.ID == peer {
			return p.Hello.Caps.Has(wire.CapLLVM) && producer > 0 && int(p.Hello.LLVM) >= producer
		}
	}
	return false
}
