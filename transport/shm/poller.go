package shm

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bcship/bcship/transport"
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

// receiver is the receive loop's state, kept in the Transport.
type receiver struct {
	mu      sync.Mutex
	pending []*conn // installed, not yet seen by the loop
	kick    chan struct{}
	stop    atomic.Bool
	bell    atomic.Uint32 // futex: 1 while the loop sleeps
	waitv   atomic.Bool   // futex_waitv is there
	sleeps  atomic.Uint64
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

// recvLoop is the receive loop: see above.
func (t *Transport) recvLoop() {
	defer t.wg.Done()
	var (
		conns   []*conn
		frames  [][]byte
		over    []wire.Header
		spins   int
		last    = time.Now()
		spinFor = t.cfg.SpinFor
		busy    = t.cfg.TCP.BusyPoll
	)
	for {
		// Take new connections, and let go of dead ones.
		t.rcv.mu.Lock()
		conns = append(conns, t.rcv.pending...)
		clear(t.rcv.pending)
		t.rcv.pending = t.rcv.pending[:0]
		t.rcv.mu.Unlock()
		live := conns[:0]
		for _, c := range conns {
			if c.stop.Load() {
				c.release()
			} else {
				live = append(live, c)
			}
		}
		clear(conns[len(live):])
		conns = live
		if t.rcv.stop.Load() {
			for _, c := range conns {
				c.fail(transport.ErrClosed, false)
				c.release()
			}
			return
		}
		if len(conns) == 0 {
			<-t.rcv.kick
			continue
		}

		took := false
		for _, c := range conns {
			if c.receive(&frames, &over) {
				took = true
			}
		}
		if took {
			last = time.Now()
			// The handler likely readied a goroutine (a waiting caller, a
			// kernel run): let it have this processor now.
			runtime.Gosched()
			continue
		}
		if watch(conns, pollBurst) {
			continue
		}
		if spins++; busy || spins&15 != 0 || time.Since(last) < spinFor {
			runtime.Gosched()
			continue
		}
		t.sleep(conns)
		last = time.Now()
	}
}

// watch polls the heads of conns' rings up to n times and reports whether
// one moved (or faulted: receive then finds out which).
func watch(conns []*conn, n int) bool {
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
	for _, c := range conns {
		ready := false
		err := guard(func() error {
			c.rx.r.sleep.Swap(1)
			n, err := c.rx.r.avail()
			ready = n > 0 || c.stop.Load() || c.seg.closed().Load() != 0
			return err
		})
		announced++
		if err != nil || ready {
			return // receive deals with it
		}
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
