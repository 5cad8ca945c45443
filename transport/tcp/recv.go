package tcp

import (
	"errors"
	"io"
	"net"
	"runtime"
	"syscall"
	"time"

	"github.com/bcship/bcship/transport"
	"github.com/bcship/bcship/transport/internal/spin"
	"github.com/bcship/bcship/wire"
)

// The receive side.
//
// Reading a connection is a role, held under conn.rmu, not a goroutine:
// normally the connection's read loop holds it, but a caller waiting for
// an answer may take it (Drive) and read and deliver on its own goroutine.
// Without that, an answer travels from the socket to the read loop, which
// the netpoller must wake, and from the read loop to the caller, which the
// scheduler must wake: two hand-offs that cost more than the kernel's own
// loopback round trip. While callers drive, read loops step aside.
//
// Without BusyPoll nobody drives: the read loop keeps the role and blocks
// in its reads like any net.Conn reader, yielding once its socket is
// drained so that the caller a frame readied runs at once. With BusyPoll
// the loop takes the role for one look at a time (a non-blocking read that
// delivers every whole frame the socket holds: pump), and after a while
// without a frame (see minSpins) waits for readability keeping the role,
// so that drivers skip the connection, until data comes or a spinner pokes
// it (park.go). Either way a frame that has begun is read to its end, waiting
// for its bytes if needed (a peer writes a frame at once, so that is
// short).

// errHungUp stops the reading of a connection that lost its framing; it is
// closed a moment later, after its ERROR answer has gone out.
var errHungUp = errors.New("tcp: connection lost its framing")

// sockReader reads a connection. It waits for data as a net.Conn does,
// except that with poll set it only tries once, with a bare recvfrom(2)
// (rawio.go), and answers errNoData when the socket is empty.
type sockReader struct {
	nc   net.Conn
	rc   syscall.RawConn // nil when nc has no descriptor: no polling
	raw  *rawFD          // set after the handshake when rc is
	poll bool

	readyF func(fd uintptr) bool // await's test, see conn.await, made once

	pokable bool // read deadlines are pokes (park.go), not timeouts
}

func newSockReader(nc net.Conn) *sockReader {
	s := &sockReader{nc: nc}
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			s.rc = rc
		}
	}
	return s
}

func (s *sockReader) Read(p []byte) (int, error) {
	for {
		n, err := s.read(p)
		// An empty poll is no poke: not worth errors.Is on every look.
		if err != nil && err != errNoData && s.poked(err) {
			continue
		}
		return n, err
	}
}

func (s *sockReader) read(p []byte) (int, error) {
	if !s.poll || s.raw == nil || len(p) == 0 {
		return s.nc.Read(p)
	}
	n, err := s.raw.read(p)
	if n == 0 && err == nil {
		return 0, io.EOF
	}
	return n, err
}

// readable reports whether a read of the socket would not block: it has
// data, or an end or error to report.
func readable(fd uintptr) bool {
	var b [1]byte
	for {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		if err == syscall.EINTR {
			continue
		}
		return n > 0 || err != syscall.EAGAIN
	}
}

// A busy-polling read loop looks at its socket again and again after a
// frame, then waits in the netpoller. How long it looks adapts to the
// traffic: minSpins looks after a quiet spell, twice as many (up to
// maxSpins, a few milliseconds) each time the next frame came while it was
// still looking or soon after it stopped (within quietAfter). Back-to-back
// traffic keeps the loop spinning; a connection with one request now and
// then parks after tens of µs instead of burning milliseconds of CPU after
// each (waking a parked loop is cheap since spinners poke it, park.go).
const (
	minSpins   = 64
	maxSpins   = 4096
	quietAfter = 2 * time.Millisecond
)

// yieldEvery is how many looks a polling goroutine takes between yields of
// its processor: a yield through the scheduler costs more than a look.
const yieldEvery = 16

// yieldCPU lets other goroutines have the processor and other threads the
// CPU. The second half is for machines with few CPUs: a loop woken by a
// peer's write in this process often runs on the writer's CPU, and while it
// spins the writer waits there for its write to return, the other CPU idle
// until the kernel's next balancing tick, milliseconds later.
// BenchmarkQuietPeer: a quiet peer's round trip with busy transports
// 2.9 ms → 0.15 ms (default transports: 0.13 ms); a read loop yields once
// per yieldEvery looks, so the system call is a few percent of its looks.
func yieldCPU() {
	runtime.Gosched()
	syscall.RawSyscall(syscall.SYS_SCHED_YIELD, 0, 0, 0)
}

func (c *conn) readLoop() {
	defer c.t.wg.Done()
	t := c.t
	// Without BusyPoll nobody drives (Drive declines): the loop keeps the
	// role and blocks in its reads, as a plain net.Conn reader would.
	wait := c.sr.rc == nil || !t.cfg.BusyPoll
	idle, spins := 0, minSpins
	for {
		if t.aside.Active() {
			t.aside.Wait(c.done)
		}
		c.rmu.Lock()
		n, err := c.pump(wait, nil)
		if err == nil && n == 0 {
			// Busy polling: look again (each look is one read) before
			// waiting in the netpoller. The wait holds rmu: it holds the
			// socket's read lock until data comes, and a driver that got
			// rmu would block on that lock instead of skipping this
			// connection (measured: a driven round trip waited 270 ms,
			// for a heartbeat on a quiet connection).
			if idle++; idle >= spins {
				parked := time.Now()
				err = c.await()
				if time.Since(parked) > quietAfter {
					spins = minSpins
				} else { // parked too soon: the next frame was close behind
					spins = min(2*spins, maxSpins)
				}
			}
		}
		c.rmu.Unlock()
		if n > 0 {
			if idle < spins { // came while the loop was looking
				spins = min(2*spins, maxSpins)
			}
			idle = 0
		}
		if err != nil {
			c.readFailed(err)
			return
		}
		if idle > 0 && idle < spins && idle%yieldEvery == 0 {
			t.pokeParked()
			yieldCPU()
		}
	}
}

// await returns when the socket is readable, a caller drives, or a
// spinner pokes it (park.go).
func (c *conn) await() error {
	t := c.t
	if c.sr.readyF == nil {
		c.sr.readyF = func(fd uintptr) bool {
			if t.aside.Active() || readable(fd) {
				return true
			}
			if !c.parked && t.park.fd >= 0 {
				c.parked = t.park.add(int(fd))
			}
			return false
		}
	}
	err := c.sr.rc.Read(c.sr.readyF)
	if c.parked {
		c.parked = false
		// Closed meanwhile, the socket has left the set by itself.
		c.sr.rc.Control(func(fd uintptr) { t.park.remove(int(fd)) })
		t.park.n.Add(-1)
	}
	if err != nil && c.sr.poked(err) {
		err = nil
	}
	return err
}

// pump delivers the whole frames the connection holds and reports how
// many it delivered, heartbeats not counted; the caller holds rmu. With
// wait it reads frames until the connection fails; else it returns when
// the socket is empty, or, when done is answered, as soon as the bytes
// already buffered are delivered: a driving caller whose answer came must
// not pay for one more read.
func (c *conn) pump(wait bool, done transport.Answered) (n int, err error) {
	if c.rxDone.Load() {
		return 0, errHungUp
	}
	for {
		if !wait && c.rb.buffered() == 0 {
			if n > 0 && done != nil && done.Answered() {
				return n, nil
			}
			c.sr.poll = true
			err := c.rb.fill()
			c.sr.poll = false
			if err == errNoData {
				return n, nil
			}
			if err != nil {
				return n, err
			}
		}
		traffic, err := c.readFrame()
		if err != nil {
			if err == errHungUp {
				c.rxDone.Store(true)
			}
			return n, err
		}
		if traffic {
			n++
		}
		if wait && c.rb.buffered() == 0 {
			// The frame likely readied a goroutine (a caller waiting for
			// this answer): let it run now, on this processor, rather
			// than after our next read has found the socket empty and
			// parked us. Measured with default nodes: invoke round trip
			// 31 → 21–25 µs, a GET-driven chase 9.5 → 6 ms at 256 hops.
			runtime.Gosched()
		}
	}
}

// readFrame reads one frame, waiting for its bytes, and delivers it; the
// caller holds rmu. traffic is false for a heartbeat (a HELLO): a busy
// loop spins on after traffic, not after keepalives, or an idle connection
// would spin for milliseconds every heartbeat (and a shared-memory node's
// TCP connections, idle but for heartbeats, would take a CPU from the
// rings that often).
func (c *conn) readFrame() (traffic bool, err error) {
	t := c.t
	// A frame the read buffer holds whole is taken in place (the common
	// case, and the cheap one: no allocation, and memory the kernel has
	// just written, where a fresh payload is memory the caches have not
	// seen; with decoding into the connection's Decoder a cached invoke
	// round trip measured 0.3–0.9 µs shorter). The buffer is not read into
	// again before the frame is handled (transport.Handler: the message is
	// the transport's until HandleMessage returns). The rest is ReadFrame's.
	f, ok := c.rb.frame(t.cfg.MaxFrame)
	if !ok {
		f, err = wire.ReadFrame(c.rb, t.cfg.MaxFrame, nil)
	}
	if err != nil {
		if errors.Is(err, wire.ErrTooLarge) && f.Type != 0 && f.Length <= maxDiscard {
			c.answer(f.RequestID, wire.CodeTooLarge, err.Error())
			if _, err := io.CopyN(io.Discard, c.rb, int64(f.Length)); err != nil {
				return false, err
			}
			c.recvs.Add(1)
			return true, nil
		}
		if errors.Is(err, wire.ErrBadMagic) || errors.Is(err, wire.ErrVersion) || errors.Is(err, wire.ErrTooLarge) {
			// The stream has lost its framing: say why, then hang up.
			c.answer(f.RequestID, wire.CodeBadFrame, err.Error())
			cause := err // captured alone: err itself stays off the heap on the hot path
			time.AfterFunc(100*time.Millisecond, func() { c.close(cause) })
			return false, errHungUp
		}
		return false, err
	}
	// The heartbeat loop sees frames by this count; no clock read here.
	c.recvs.Add(1)
	t.bytesRecv.Add(uint64(wire.HeaderSize + len(f.Payload)))
	t.framesRecv.Add(1)
	if f.Type == wire.TypeHello {
		var h wire.Hello
		if err := h.Decode(f.Payload); err == nil && h.Node == c.peer {
			t.mu.Lock()
			if p := t.peers[c.peer]; p != nil {
				p.hello = h
			}
			t.mu.Unlock()
		}
		return false, nil
	}
	m, err := c.dec.Decode(f.Type, f.Payload)
	if err != nil {
		code := wire.CodeBadFrame
		if errors.Is(err, wire.ErrUnknownType) {
			code = wire.CodeUnknownType
		}
		if f.Type != wire.TypeError { // never answer an ERROR with an ERROR
			c.answer(f.RequestID, code, err.Error())
		}
		return true, nil
	}
	c.inHandler.Store(true)
	t.cfg.Handler.HandleMessage(c.peer, f.Header, m)
	c.recvs.Add(1) // the handler's end: time in it was not the peer's silence
	c.inHandler.Store(false)
	if !ok {
		// The payload was ReadFrame's own allocation (a large or split
		// frame): the Decoder's message must not keep it alive.
		c.dec = wire.Decoder{}
	}
	return true, nil
}

// readFailed ends the reading of c after err from pump or await.
func (c *conn) readFailed(err error) {
	if err != errHungUp {
		c.close(err)
	}
}

// driveFor is how long a caller drives before it leaves the sockets to the
// read loops and blocks: a caller that waits for a long chain must not
// hold a processor.
const driveFor = 50 * time.Microsecond

// Drive implements transport.Driver: the caller reads every connection
// that has data and delivers what it holds, on its own goroutine, until
// done is answered or driveFor has passed. Only with BusyPoll: without it, a
// node has asked not to spin, and its read loops wait in the netpoller,
// which a spinning caller starves: tried with peeking read loops, a
// default-mode round trip went from 31 to 97 µs (the caller spun its 50 µs
// while the peer's read loop waited for a netpoll that a yielding spinner
// never lets run).
func (t *Transport) Drive(_ uint32, done transport.Answered) bool {
	if !t.cfg.BusyPoll {
		return false
	}
	t.aside.Enter()
	defer t.aside.Leave()
	pace := spin.Pacer{Yield: t.pokeF}
	for {
		conns := t.live.Load()
		if conns == nil {
			return false // closed
		}
		for _, c := range *conns {
			if c.sr.rc == nil || c.rxDone.Load() || !c.rmu.TryLock() {
				continue
			}
			_, err := c.pump(false, done)
			c.rmu.Unlock()
			if err != nil {
				c.readFailed(err)
			}
		}
		if done.Answered() {
			return true
		}
		if !pace.Next(yieldEvery, driveFor) {
			return false
		}
	}
}
