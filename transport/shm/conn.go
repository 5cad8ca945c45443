package shm

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bcship/bcship/transport"
	"github.com/bcship/bcship/transport/internal/overlay"
	"github.com/bcship/bcship/wire"
)

// sleepFor bounds one futex sleep, as a safety net: a wake-up lost to a
// peer's bug costs this much latency, never a hang, and a sleeper notices
// a stop that raced with its sleep within it.
const sleepFor = 100 * time.Millisecond

// errPeerGaveUp is the cause when the peer marked the segment closed: it
// shuts down, or it dropped the connection while the TCP link stands (a
// setup it abandoned, a ring it found corrupted).
var errPeerGaveUp = errors.New("shm: the peer gave the connection up")

// conn is the shared-memory connection to one peer: a segment with a ring
// each way. The transport's receive loop owns the consumer side of rx and
// delivers to the node; senders share the producer side of tx under mu, and
// frames that find no room wait in a queue that the connection's send loop
// drains as the peer consumes. The receive loop unmaps the segment once
// the connection is dead and the send loop has ended.
type conn struct {
	t         *Transport
	peer      uint32
	maxFrame  uint32 // the peer's limit
	initiator bool   // we created the segment
	seg       *segment
	tx        *ring
	rx        reader
	dec       wire.Decoder  // rx's frames decode into it; used by whoever holds the receive role
	stop      atomic.Bool   // the loops end; set once, by fail
	sendDone  chan struct{} // closed when the send loop has ended
	kick      chan struct{}

	mu       sync.Mutex
	queue    [][]byte // frames waiting for ring space, oldest first
	queueOff int      // bytes of queue[0] already in the ring
	queued   int      // bytes in queue
	dead     bool
	deadErr  error

	framesSent, framesRecv atomic.Uint64
	fullWaits              atomic.Uint64
}

// newConn views seg as our side of a connection: the initiator produces
// into ring 0, the acceptor into ring 1.
func (t *Transport) newConn(peer uint32, maxFrame uint32, seg *segment, initiator bool) *conn {
	if maxFrame == 0 {
		maxFrame = wire.DefaultMaxFrameSize
	}
	out, in := 0, 1
	if !initiator {
		out, in = 1, 0
	}
	return &conn{t: t, peer: peer, maxFrame: maxFrame, initiator: initiator, seg: seg, tx: seg.ring(out),
		rx:       reader{r: seg.ring(in), maxFrame: t.cfg.TCP.MaxFrame},
		sendDone: make(chan struct{}), kick: make(chan struct{}, 1)}
}

// start runs the connection's send loop (the caller has added 1 to t.wg)
// and hands it to the transport's receive loop.
func (c *conn) start() {
	go c.sendLoop()
	c.t.addConn(c)
}

func (c *conn) isDead() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dead
}

// enqueue sends one encoded frame (a buffer from t.bufs, which it takes
// over). With nothing queued it copies the frame into the ring right here,
// which saves the hand-off to the send loop; what does not fit waits in
// the queue, so Send never blocks on a slow peer.
func (c *conn) enqueue(buf []byte) error {
	c.mu.Lock()
	if c.dead {
		err := c.deadErr
		c.mu.Unlock()
		c.t.bufs.Put(buf)
		return &transport.PeerDownError{Peer: c.peer, Err: err}
	}
	if len(c.queue) > 0 && c.queued+len(buf) > c.t.cfg.MaxQueued {
		n := c.queued
		c.mu.Unlock()
		c.t.bufs.Put(buf)
		return fmt.Errorf("shm: peer %d: %w (%d bytes waiting for ring space)", c.peer, ErrQueueFull, n)
	}
	c.queue = append(c.queue, buf)
	c.queued += len(buf)
	if len(c.queue) > 1 {
		c.mu.Unlock()
		return nil // the send loop is on it
	}
	err := c.flushLocked()
	waiting := len(c.queue) > 0
	c.mu.Unlock()
	if err != nil {
		c.fail(err, true)
		return &transport.PeerDownError{Peer: c.peer, Err: err}
	}
	if waiting {
		c.fullWaits.Add(1)
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// flushLocked copies queued frames into the ring while it has room and
// publishes them with one head store.
func (c *conn) flushLocked() error {
	if c.dead {
		return nil
	}
	var sent, bytes int
	err := guard(func() error {
		space, err := c.tx.space()
		if err != nil {
			return err
		}
		for len(c.queue) > 0 && space > 0 {
			f := c.queue[0][c.queueOff:]
			n := int(min(space, uint64(len(f))))
			c.tx.put(f[:n])
			space -= uint64(n)
			if n < len(f) {
				c.queueOff += n
				break
			}
			c.t.bufs.Put(c.queue[0])
			c.queued -= len(c.queue[0])
			bytes += len(c.queue[0])
			c.queue[0] = nil
			c.queue, c.queueOff = c.queue[1:], 0
			sent++
		}
		c.tx.publish()
		return nil
	})
	if len(c.queue) == 0 {
		c.queue = c.queue[:0:0] // let a long queue's array go
	}
	c.framesSent.Add(uint64(sent))
	c.t.ctr.Sent(sent, bytes)
	return err
}

// sendLoop drains the queue as the peer makes room: it polls the ring for
// SpinFor, then sleeps on the ring's wait word until the consumer
// releases space.
func (c *conn) sendLoop() {
	defer c.t.wg.Done()
	defer close(c.sendDone)
	spinFor := c.t.cfg.SpinFor
	for {
		<-c.kick
		var since time.Time
		for {
			if c.stop.Load() {
				return
			}
			c.mu.Lock()
			err := c.flushLocked()
			waiting := len(c.queue) > 0
			c.mu.Unlock()
			if err != nil {
				c.fail(err, true)
				return
			}
			if !waiting {
				break
			}
			if since.IsZero() {
				since = time.Now()
			}
			if c.t.cfg.TCP.BusyPoll || time.Since(since) < spinFor {
				runtime.Gosched()
				continue
			}
			if err := guard(func() error { return c.tx.waitSpace(&c.stop, sleepFor) }); err != nil {
				c.fail(err, true)
				return
			}
		}
	}
}

// receive takes what rx holds and delivers it; the transport's receive
// loop calls it for every connection. It reports whether it took anything,
// and fails the connection when the ring is corrupt or the peer gave it up.
func (c *conn) receive(frames *[][]byte, over *[]wire.Header) bool {
	var took bool
	var gaveUp uint32 // the peer's closed word
	err := guard(func() error {
		var err error
		*frames, *over, took, err = c.rx.poll((*frames)[:0], (*over)[:0])
		if !took && err == nil {
			gaveUp = c.seg.closed().Load()
		}
		return err
	})
	if err != nil {
		c.fail(err, true)
		return false
	}
	if gaveUp != 0 {
		// Shutting down: the TCP link drops too, and its PeerDown tells
		// the node; abandoned: only we can.
		c.fail(errPeerGaveUp, gaveUp != closedShutdown)
		return false
	}
	for i, f := range *frames {
		(*frames)[i] = nil
		c.deliver(f)
	}
	for _, h := range *over {
		c.answer(h.RequestID, wire.CodeTooLarge, fmt.Sprintf("shm: frame of %d bytes over the limit of %d", h.Length, c.rx.maxFrame))
	}
	return took
}

// release unmaps the segment once the connection is dead; the receive
// loop calls it after its last look at rx.
func (c *conn) release() {
	select { // the send loop may wait for a kick
	case c.kick <- struct{}{}:
	default:
	}
	<-c.sendDone
	// Under mu: fail touches the segment under it, and fail may still be
	// running (it set stop before its last touch).
	c.mu.Lock()
	c.seg.unmap()
	c.mu.Unlock()
}

// deliver decodes one frame into the connection's messages and hands it
// to the node (the receiver holds role: one frame at a time).
func (c *conn) deliver(f []byte) {
	t := c.t
	h, _ := wire.ParseHeader(f) // checked by the reader
	t.ctr.Received(len(f))
	c.framesRecv.Add(1)
	overlay.Deliver(t.h, &c.dec, c.peer, h, f, c.answer)
}

// answer sends an ERROR about a frame this connection delivered.
func (c *conn) answer(req uint64, code wire.ErrorCode, text string) {
	c.t.ctr.Bad()
	b, err := wire.AppendFrame(c.t.bufs.Get(), wire.Header{RequestID: req, Source: c.t.self}, wire.NewError(code, req, text))
	if err != nil {
		c.t.bufs.Put(b)
		return
	}
	c.enqueue(b)
}

// fail marks the connection dead once: queued frames are dropped, later
// sends get ErrPeerDown, the peer is told through the segment's closed
// word, and the loops stop (the receive loop then unmaps the segment).
// With notify the connection is also detached from its peer and the node
// hears PeerDown (when the TCP connection died, the caller tells the node
// itself).
func (c *conn) fail(err error, notify bool) {
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return
	}
	c.dead, c.deadErr = true, err
	for _, b := range c.queue {
		c.t.bufs.Put(b)
	}
	c.queue, c.queued, c.queueOff = nil, 0, 0
	c.stop.Store(true)
	// Stop first, then wake: a loop going to sleep checks stop after it
	// announces its sleep (see ring.snooze). The peer's loops are woken
	// too, so they see the closed word now rather than at their next
	// timeout, and so is our receive loop, which then unmaps the segment.
	guard(func() error {
		if notify {
			c.seg.closed().Store(closedAbandon)
		} else {
			c.seg.closed().CompareAndSwap(0, closedShutdown)
		}
		c.tx.wakeConsumer()
		c.tx.wakeProducer()
		c.rx.r.wakeConsumer()
		c.rx.r.wakeProducer()
		return nil
	})
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
	c.t.ringBell()
	if !notify {
		return
	}
	t := c.t
	t.mu.Lock()
	cur := t.peers.Detach(c.peer, c)
	closed := t.closed
	t.mu.Unlock()
	if cur && !closed {
		t.log.Info("shared-memory connection lost", "peer", c.peer, "err", err)
		t.h.PeerDown(c.peer, &transport.PeerDownError{Peer: c.peer, Err: err})
	}
}

func (c *conn) info() ConnInfo {
	c.mu.Lock()
	q := c.queued
	c.mu.Unlock()
	return ConnInfo{Peer: c.peer, RingSize: c.seg.ringSize, Queued: q, FramesSent: c.framesSent.Load(),
		FramesRecv: c.framesRecv.Load(), FullWaits: c.fullWaits.Load()}
}
