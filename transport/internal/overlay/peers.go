package overlay

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"sync"
	"time"

	"github.com/bcship/bcship/transport"
)

// Peer is the fast-path state of one peer: its connection C (the zero C
// when there is none) and the setup attempt in progress, whose answer,
// a setup message M, arrives on Reply.
//
// The fields are guarded by the owning transport's mutex, except Order.
type Peer[C comparable, M any] struct {
	Conn     C
	Dialing  chan struct{} // closed when our setup attempt ends
	Nonce    uint64        // names our setup attempt
	Reply    chan M        // the answer to it (buffered, one)
	TCPOnly  bool          // no fast path to this peer until its TCP link drops
	RetryAt  time.Time     // after a failed setup, TCP until then
	SetupErr error         // how our last setup attempt ended

	// Order orders a setup's messages on the TCP stream with other
	// traffic on it; what it orders is each transport's to say.
	Order sync.RWMutex
}

// Begin starts our setup attempt: later callers wait on Dialing, and
// Reply takes the answer that carries Nonce.
func (ps *Peer[C, M]) Begin() {
	ps.Dialing = make(chan struct{})
	ps.Nonce = Rand64()
	ps.Reply = make(chan M, 1)
}

// End ends our setup attempt with err and wakes those waiting on it.
func (ps *Peer[C, M]) End(err error) {
	close(ps.Dialing)
	ps.Dialing, ps.Reply = nil, nil
	ps.SetupErr = err
}

// Answer passes m to the setup attempt waiting on Reply, if any. It never
// blocks: Reply holds one answer, and a second is dropped.
func (ps *Peer[C, M]) Answer(m M) {
	if ps.Reply != nil {
		select {
		case ps.Reply <- m:
		default:
		}
	}
}

// LinkDown resets ps when its TCP link dropped: it returns the connection
// (now detached) for the caller to fail, and the next setup starts afresh
// (the peer may have restarted with or without a fast path).
func (ps *Peer[C, M]) LinkDown() C {
	var zero C
	c := ps.Conn
	ps.Conn = zero
	ps.TCPOnly, ps.RetryAt = false, time.Time{}
	return c
}

// Peers maps node ids to their Peer. Like the Peers in it, it is guarded
// by the owning transport's mutex.
type Peers[C comparable, M any] map[uint32]*Peer[C, M]

// Get returns id's Peer, adding it when it is new.
func (p Peers[C, M]) Get(id uint32) *Peer[C, M] {
	ps := p[id]
	if ps == nil {
		ps = &Peer[C, M]{}
		p[id] = ps
	}
	return ps
}

// Answer passes a setup answer from peer to our attempt named nonce;
// an answer to no attempt of ours, or to an older one, is dropped.
func (p Peers[C, M]) Answer(from uint32, nonce uint64, m M) {
	if ps := p[from]; ps != nil && ps.Nonce == nonce {
		ps.Answer(m)
	}
}

// Detach removes c as its peer's connection and reports whether it was.
func (p Peers[C, M]) Detach(peer uint32, c C) bool {
	if ps := p[peer]; ps != nil && ps.Conn == c {
		var zero C
		ps.Conn = zero
		return true
	}
	return false
}

// Conns returns the peers' connections.
func (p Peers[C, M]) Conns() []C {
	var zero C
	var cs []C
	for _, ps := range p {
		if ps.Conn != zero {
			cs = append(cs, ps.Conn)
		}
	}
	return cs
}

// TakeConns detaches and returns every connection (Close).
func (p Peers[C, M]) TakeConns() []C {
	cs := p.Conns()
	var zero C
	for _, ps := range p {
		ps.Conn = zero
	}
	return cs
}

// Fatal reports whether a setup failed for a reason that also stops TCP
// (the caller gets the error) rather than one that leaves the peer on
// TCP for a while.
func Fatal(err error) bool {
	return errors.Is(err, transport.ErrPeerDown) || errors.Is(err, transport.ErrUnknownPeer) || errors.Is(err, transport.ErrClosed)
}

// LowerWins reports whether our setup wins over the peer's when both set
// up at once: the lower node id's does, on both sides.
func LowerWins(self, peer uint32) bool { return self < peer }

// Rand64 returns a random 64-bit number (setup nonces).
func Rand64() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:])
}
