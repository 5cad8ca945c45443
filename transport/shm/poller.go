package shm

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bcship/bcship/transport"
	"github.com/bcship/bcship/transport/internal/spin"
	"github.com/bcship/bcship/wire"
)

// The receive loop. One goroutine per Transport polls the rings of all its
// connections and delivers to the node, as transport/rdma's CQ pollers do
// for their connections: a loop per connection made a node with n peers run
// n spinning loops that took turns on a machine with few cores, and every
// hop of a chase waited for its turn. The price is that a slow handler holds
// up the other connections too (the Handler contract asks for quick ones).
//
// After SpinFor without a frame the loop announces that it sleeps in every
// ring's sleep word and sleeps on all of them at once, plus a local bell for
// new connections and for Close: futex_waitv(2) where the kernel has it
// (5.16), else one helper goroutine per word in FUTEX_WAIT.

// pollBurst is how many passes over the rings' heads an idle receive loop
// makes between yields of its processor. Yielding lets other goroutines run
// on a machine with few cores, but each yield is a trip through the
// scheduler and its lock: looking a few hundred nanoseconds at words that
// are in our cache costs less and reacts as fast.
const pollBurst = 64

// yieldEvery is how many bursts a polling goroutine makes before it yields
// its processor: a yield costs more than a burst (0.3–0.7 µs through the
// scheduler on two vCPUs), and a frame that arrives during one waits for
// it.
const yieldEvery = 16

// With busy polling (Config.TCP.BusyPoll) the loop polls longer before it
// sleeps, as long as traffic keeps coming: busyMinSpin after a quiet spell,
// twice as long (up to busyMaxSpin) each time the next frame came within
// busyQuiet of its sleep. It used to never sleep: two idle busy transports
// took both CPUs of this VM (TestIdleBusyDoesNotSpin: 801 ms of CPU in 400
// ms with a message every 10 ms; default ones 13 ms).
const (
	busyMinSpin = 50 * time.Microsecond
	busyMaxSpin = 2 * time.Millisecond
	busyQuiet   = 2 * time.Millisecond
)

// receiver is the receive loop's state, kept in the Transport.
//
// Receiving is a role, not a goroutine: whoever holds role polls the rings
// and delivers what they hold. Normally that is the receive loop; a caller
// waiting for an answer may take the role over (Drive), so that the answer
// is seen and delivered on the caller's own goroutine instead of being
// handed to it through the scheduler: on a round trip of a few
// microseconds that hand-off (wake the caller, find it a processor) was
// most of the time. While callers drive, the loop steps aside.
type receiver struct {
	mu      sync.Mutex
	pending []*conn // installed, not yet seen by the role holder
	kick    chan struct{}
	stop    atomic.Bool
	bell    atomic.Uint32 // futex: 1 while the loop sleeps
	waitv   atomic.Bool   // futex_waitv is there
	sleeps  atomic.Uint64

	role   sync.Mutex
	conns  []*conn // the connections polled; guarded by role
	frames [][]byte
	over   []wire.Header

	aside   spin.Aside    // the loop waits here while callers drive
	closing chan struct{} // closed by Close: releases the loop from aside
	drives  atomic.Uint64 // Drive calls that saw their answer
}

// addConn hands an installed connection to the receive loop.
func (t *Transport) addConn(c *conn) {
	t.rcv.mu.Lock()
	t.rcv.pending = append(t.rcv.pending, c)
	t.rcv.mu.Unlock()
	select {
	case t.rcv.kick <- struct{}{}:
	default:
	}
	t.ringBell()
}

// ringBell wakes the receive loop if it sleeps.
func (t *Transport) ringBell() {
	if t.rcv.bell.Load() != 0 && t.rcv.bell.CompareAndSwap(1, 0) {
		futexWake(&t.rcv.bell)
	}
}

// adopt moves pending connections to the polled ones; the caller holds
// role. It reports whether there were any.
func (r *receiver) adopt() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pending) == 0 {
		return false
	}
	r.conns = append(r.conns, r.pending...)
	clear(r.pending)
	r.pending = r.pending[:0]
	return true
}

// receiveAll polls every live connection once and delivers what it took;
// the caller holds role.
func (r *receiver) receiveAll() bool {
	took := false
	for _, c := range r.conns {
		if !c.stop.Load() && c.receive(&r.frames, &r.over) {
			took = true
		}
	}
	return took
}

// recvLoop is the receive loop: see above.
func (t *Transport) recvLoop() {
	defer t.wg.Done()
	r := &t.rcv
	var (
		snap  []*conn // the connections, for watching and sleeping without role
		spins int
		last  = time.Now()
		busy  = t.cfg.TCP.BusyPoll
		// How long the loop polls after the last frame: SpinFor, or with
		// busy polling between minSpin and maxSpin as the traffic asks.
		minSpin, maxSpin = t.cfg.SpinFor, t.cfg.SpinFor
	)
	if busy {
		minSpin, maxSpin = max(minSpin, busyMinSpin), max(maxSpin, busyMaxSpin)
	}
	spinFor := minSpin
	for {
		if r.aside.Active() {
			r.aside.Wait(r.closing)
			last = time.Now()
		}
		r.role.Lock()
		// Take new connections, and let go of dead ones. Only the loop
		// releases (unmaps) a connection, so snap stays valid while it
		// does not hold role.
		r.adopt()
		live := r.conns[:0]
		for _, c := range r.conns {
			if c.stop.Load() {
				c.release()
			} else {
				live = append(live, c)
			}
		}
		clear(r.conns[len(live):])
		r.conns = live
		if r.stop.Load() {
			for _, c := range r.conns {
				c.fail(transport.ErrClosed, false)
				c.release()
			}
			r.role.Unlock()
			return
		}
		took := r.receiveAll()
		snap = append(snap[:0], r.conns...)
		r.role.Unlock()
		if len(snap) == 0 {
			<-r.kick
			continue
		}
		if took {
			last = time.Now()
			// The handler likely readied a goroutine (a waiting caller, a
			// kernel run): let it have this processor now.
			runtime.Gosched()
			continue
		}
		if r.idle(snap) {
			continue
		}
		if spins++; spins&3 != 0 || time.Since(last) < spinFor {
			runtime.Gosched()
			continue
		}
		slept := time.Now()
		t.sleep(snap)
		last = time.Now()
		if last.Sub(slept) > busyQuiet {
			spinFor = minSpin
		} else { // slept too soon: the next frame was close behind
			spinFor = min(2*spinFor, maxSpin)
		}
	}
}

// idle watches conns' heads for up to yieldEvery bursts; when one moves it
// delivers at once, still holding role. It reports whether a head moved or
// a caller began to drive.
func (r *receiver) idle(conns []*conn) bool {
	for range yieldEvery {
		// Under role: a driver moves the rings' consumer positions.
		r.role.Lock()
		if r.aside.Active() {
			r.role.Unlock()
			return true
		}
		moved, took := watch(conns, pollBurst), false
		if moved {
			took = r.receiveAll()
		}
		r.role.Unlock()
		if took {
			runtime.Gosched() // as the loop does after a delivery
		}
		if moved {
			return true
		}
	}
	return false
}

// driveFor is how long a caller drives before it leaves the rings to the
// receive loop and blocks: a caller that waits for a long chain must not
// hold a processor. Between yields it watches the rings in bursts of
// pollBurst, as the loop does.
const driveFor = 50 * time.Microsecond

// Drive implements transport.Driver: the caller polls the rings and
// delivers what arrives, on its own goroutine, until done is answered or
// driveFor has passed. It declines when peer is not reached through shared
// memory: that answer comes over TCP, whose read loop waits in the
// netpoller, and a spinning caller would only delay it.
func (t *Transport) Drive(peer uint32, done transport.Answered) bool {
	r := &t.rcv
	if r.stop.Load() || !t.onShm(peer) {
		return false
	}
	r.aside.Enter()
	adopted := false
	defer func() {
		r.aside.Leave()
		if adopted {
			// The loop may sleep without watching the connections we
			// adopted; it must look at them now.
			t.ringBell()
		}
	}()
	var pace spin.Pacer
	for {
		if r.role.TryLock() {
			if r.adopt() {
				adopted = true
			}
			if watch(r.conns, pollBurst) {
				r.receiveAll()
			}
			r.role.Unlock()
		}
		if done.Answered() {
			r.drives.Add(1)
			return true
		}
		if r.stop.Load() {
			return false
		}
		if !pace.Next(yieldEvery, driveFor) {
			return false
		}
	}
}

// watch polls the heads of conns' rings up to n times and reports whether
// one moved (or faulted: receive then finds out which).
func watch(conns []*conn, n int) bool {
	if len(conns) == 0 {
		return false
	}
	moved := false
	err := guard(func() error {
		for range max(n/len(conns), 1) {
			for _, c := range conns {
				if c.rx.r.watch(1) {
					moved = true
					return nil
				}
			}
		}
		return nil
	})
	return moved || err != nil
}

// sleep announces in every ring of conns that the loop sleeps, checks them
// once more, and sleeps until a producer wakes one of them, the bell rings
// or sleepFor passes. The protocol per ring is ring.snooze's.
func (t *Transport) sleep(conns []*conn) {
	t.rcv.sleeps.Add(1)
	t.rcv.bell.Swap(1)
	announced := 0
	defer func() {
		for _, c := range conns[:announced] {
			guard(func() error { c.rx.r.sleep.Store(0); return nil })
		}
		t.rcv.bell.Store(0)
	}()
	// Announce and look under role: a driver moves the consumer positions.
	// A driver that comes while we sleep finds the words set, so the
	// producers wake us and we step aside.
	t.rcv.role.Lock()
	ready := t.rcv.aside.Active()
	for _, c := range conns {
		if ready {
			break
		}
		err := guard(func() error {
			c.rx.r.sleep.Swap(1)
			n, err := c.rx.r.avail()
			ready = n > 0 || c.stop.Load() || c.seg.closed().Load() != 0
			return err
		})
		announced++
		ready = ready || err != nil
	}
	t.rcv.role.Unlock()
	if ready {
		return // receive deals with it
	}
	t.rcv.mu.Lock()
	pending := len(t.rcv.pending)
	t.rcv.mu.Unlock()
	if pending > 0 || t.rcv.stop.Load() {
		return
	}
	if t.rcv.waitv.Load() && len(conns) < futexWaitvMax {
		ws := make([]futexWaiter, 0, len(conns)+1)
		ws = append(ws, waiterFor(&t.rcv.bell, 1))
		for _, c := range conns {
			ws = append(ws, waiterFor(c.rx.r.sleep, 1))
		}
		futexWaitv(ws, sleepFor)
		return
	}
	// Without futex_waitv: a helper per word, the first one up releases
	// the others.
	woke := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wait := func(w *atomic.Uint32) {
		defer wg.Done()
		futexWait(w, 1, sleepFor)
		select {
		case woke <- struct{}{}:
		default:
		}
	}
	wg.Add(1 + len(conns))
	go wait(&t.rcv.bell)
	for _, c := range conns {
		go wait(c.rx.r.sleep)
	}
	<-woke
	t.rcv.bell.Store(0)
	futexWake(&t.rcv.bell)
	for _, c := range conns {
		guard(func() error { c.rx.r.wakeConsumer(); return nil })
	}
	wg.Wait()
}

// onShm reports whether peer has a live shared-memory connection.
func (t *Transport) onShm(peer uint32) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	ps := t.peers[peer]
	return ps != nil && ps.Conn != nil && !ps.Conn.stop.Load()
}
