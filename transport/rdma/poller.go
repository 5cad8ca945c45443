package rdma

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bcship/bcship/transport"
	"github.com/bcship/bcship/verbs"
)

// Completion polling.
//
// Connections share completion queues: a CQ serves as many connections as
// its entries cover, and one poller goroutine drains it. With a CQ and a
// poller per connection, a node with n peers ran n spinning goroutines, and
// the one whose completion had arrived waited its turn behind the idle ones
// (a three-node chase under emulation lost a fifth of its hop time so). A
// node normally has a single CQ and a single poller.

// blockAfter is how long a poller goes without completions before it
// blocks on the completion channel instead of sleeping in steps. Not
// sooner: a wake-up through the channel took ≈130 µs under emulation
// against ≈30 µs polled, and a blocked or spinning poller (rather than a
// sleeping one) made a three-node chase several times slower there, since
// soft-RoCE finishes deliveries in kernel threads that need the CPUs.
const blockAfter = 20 * time.Millisecond

// defaultCQEntries sizes each shared CQ: about 30 connections at the
// default slot counts.
const defaultCQEntries = 4096

// Work request ids: the kind in the top byte, the connection in the next
// three (a CQ's completions are dispatched by it), and a slot index or
// sequence number in the low four.
const (
	kindRecv   = 1
	kindSend   = 2
	kindCredit = 3
	kindOp     = 4
	kindInline = 5
)

func wrID(kind int, conn uint32, n uint64) uint64 {
	return uint64(kind)<<56 | uint64(conn&0xffffff)<<32 | n&0xffffffff
}

func splitID(id uint64) (kind int, conn uint32, n uint64) {
	return int(id >> 56), uint32(id>>32) & 0xffffff, id & 0xffffffff
}

// poller owns one CQ and the connections whose QPs complete on it.
type poller struct {
	t    *Transport
	cq   *verbs.CQ
	ch   *verbs.CompChannel // nil: the device has none; the poller sleeps in steps
	size int
	stop atomic.Bool

	// polling is held by whoever drains the CQ: the poller goroutine, or
	// a caller waiting for its one-sided operation (see drive). It orders
	// each connection's completions.
	polling sync.Mutex
	// stash holds completions a driving caller polled but left to the
	// poller goroutine (everything but one-sided ones), oldest first;
	// kick wakes the poller for them. Guarded by polling.
	stash []verbs.WC
	kick  chan struct{}

	mu     sync.Mutex
	used   int              // CQ entries the connections' queues can fill
	broken bool             // the CQ failed: no new connections
	conns  map[uint32]*conn // by connection id
}

// attach finds a CQ with room for need entries, or creates one with its
// poller, and reserves the room for c, which gets a connection id.
func (t *Transport) attach(c *conn, need int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return transport.ErrClosed
	}
	var p *poller
	for _, q := range t.pollers {
		q.mu.Lock()
		ok := !q.broken && q.size-q.used >= need
		q.mu.Unlock()
		if ok {
			p = q
			break
		}
	}
	if p == nil {
		size := max(defaultCQEntries, need)
		p = &poller{t: t, size: size, conns: map[uint32]*conn{}, kick: make(chan struct{}, 1)}
		if ch, err := t.vctx.CreateCompChannel(); err == nil {
			p.ch = ch
		} else {
			t.log.Debug("rdma: no completion channel; idle pollers sleep in steps", "err", err)
		}
		cq, err := t.vctx.CreateCQWithChannel(size, p.ch)
		if err != nil {
			if p.ch != nil {
				p.ch.Close()
			}
			return err
		}
		p.cq = cq
		t.pollers = append(t.pollers, p)
		t.wg.Add(1)
		go p.run()
	}
	t.connSeq++
	c.id = t.connSeq & 0xffffff
	c.p, c.cqNeed = p, need
	p.mu.Lock()
	p.used += need
	p.conns[c.id] = c
	p.mu.Unlock()
	t.conns.Add(1)
	return nil
}

// detach forgets c: completions still queued for it are dropped.
func (p *poller) detach(c *conn) {
	p.mu.Lock()
	if p.conns[c.id] == c {
		delete(p.conns, c.id)
		p.used -= c.cqNeed
	}
	p.mu.Unlock()
}

// run drains the CQ. After the last completion it spins for SpinFor, then
// sleeps with a doubling pause up to MaxSleep; idle for blockAfter, it arms
// the CQ and blocks on the completion channel (if the device has one). A
// driving caller's stash, and Close, wake it.
func (p *poller) run() {
	defer p.t.wg.Done()
	cfg := &p.t.cfg
	wcs := make([]verbs.WC, 64)
	last := time.Now()
	var pause time.Duration
	sleep := time.NewTimer(time.Hour)
	defer sleep.Stop()
	blocking, armed := p.ch != nil, false
	for spins := 0; !p.stop.Load(); spins++ {
		if !p.polling.TryLock() {
			runtime.Gosched() // a caller drives the CQ
			continue
		}
		n, err := p.cq.Poll(wcs)
		if err != nil {
			p.polling.Unlock()
			p.fail(err)
			return
		}
		stash := p.stash
		p.stash = nil
		if len(stash) > 0 {
			p.dispatch(stash)
		}
		if n > 0 {
			p.dispatch(wcs[:n])
		}
		p.polling.Unlock()
		if n+len(stash) > 0 {
			pause, last, armed = 0, time.Now(), false
			continue
		}
		if cfg.TCP.BusyPoll || spins&63 != 0 || time.Since(last) < cfg.SpinFor {
			runtime.Gosched()
			continue
		}
		if blocking && time.Since(last) >= blockAfter {
			if !armed {
				// Arm, then poll once more: a completion that came
				// in before the arm raises no event.
				if err := p.cq.ReqNotify(false); err == nil {
					armed = true
					continue
				}
				p.t.log.Warn("rdma: arming the CQ failed; polling in steps", "err", err)
				blocking = false
				continue
			}
			// Returns on an event, Interrupt (kick, Close) or the
			// channel closing; the loop polls either way.
			p.ch.Wait(context.Background())
			armed = false
			continue
		}
		pause = min(max(2*pause, 5*time.Microsecond), cfg.MaxSleep)
		sleep.Reset(pause)
		select {
		case <-sleep.C:
		case <-p.kick:
			pause = 0
		}
	}
}

// wake ends the poller's sleep or wait.
func (p *poller) wake() {
	if ch := p.ch; ch != nil {
		ch.Interrupt()
	}
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// drive polls the CQ on behalf of a caller waiting for a one-sided
// operation, so that its completion reaches it without a hand-off between
// goroutines (under load, that hand-off cost more than the READ itself).
// One-sided completions are handed out at once; the rest wait, in order,
// for the poller goroutine. It reports false when someone else is polling.
func (p *poller) drive() bool {
	if !p.polling.TryLock() {
		return false
	}
	defer p.polling.Unlock()
	var wcs [16]verbs.WC
	n, err := p.cq.Poll(wcs[:])
	if err != nil || n == 0 {
		return true // the poller goroutine reports a broken CQ
	}
	kicked := false
	for _, wc := range wcs[:n] {
		if kind, id, _ := splitID(wc.ID); kind == kindOp && wc.Status == verbs.WCSuccess {
			if c := p.conn(id); c != nil {
				c.completeOp(wc.ID, nil)
			}
			continue
		}
		p.stash = append(p.stash, wc)
		if !kicked {
			kicked = true
			p.wake()
		}
	}
	return true
}

// conn is the attached connection with id, or nil (detached: its
// completions are dropped).
func (p *poller) conn(id uint32) *conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns[id]
}

// dispatch hands each connection its completions, in order.
func (p *poller) dispatch(wcs []verbs.WC) {
	for i := 0; i < len(wcs); {
		_, id, _ := splitID(wcs[i].ID)
		j := i + 1
		for j < len(wcs) {
			if _, next, _ := splitID(wcs[j].ID); next != id {
				break
			}
			j++
		}
		if c := p.conn(id); c != nil {
			c.handle(wcs[i:j])
		}
		i = j
	}
}

// fail takes down every connection of a CQ that stopped working.
func (p *poller) fail(err error) {
	p.mu.Lock()
	p.broken = true
	cs := make([]*conn, 0, len(p.conns))
	for _, c := range p.conns {
		cs = append(cs, c)
	}
	p.mu.Unlock()
	for _, c := range cs {
		c.fail(fmt.Errorf("rdma: completion queue: %w", err), true)
	}
}
