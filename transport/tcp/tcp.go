package tcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bcship/bcship/transport"
	"github.com/bcship/bcship/transport/internal/framebuf"
	"github.com/bcship/bcship/transport/internal/spin"
	"github.com/bcship/bcship/wire"
)

// Defaults for Config's zero fields.
const (
	DefaultHeartbeat    = 200 * time.Millisecond
	DefaultDeadAfter    = 800 * time.Millisecond
	DefaultDialTimeout  = time.Second
	DefaultMaxBackoff   = 2 * time.Second
	DefaultWriteTimeout = 10 * time.Second
	// minBackoff is the wait after the first failed dial; it doubles up to
	// MaxBackoff.
	minBackoff = 50 * time.Millisecond
	// graceClose is how long the losing connection of a simultaneous dial
	// stays open, so frames already queued on it still arrive.
	graceClose = time.Second
	// maxDiscard bounds the bytes of an oversize frame the reader skips to
	// keep the connection; larger ones drop it.
	maxDiscard = 1 << 30
)

// Config configures a Transport.
type Config struct {
	// Self is this node's id.
	Self uint32
	// Listen is the address to accept connections on ("127.0.0.1:0",
	// ":7403"); empty means dial-only.
	Listen string
	// Peers maps node ids to addresses to dial. Peers that connect to us
	// are learned from their HELLO and need no entry.
	Peers map[uint32]string
	// Hello is what this node announces. Node is set to Self; Listen, when
	// empty, to the listener's address; MaxFrame to MaxFrame.
	Hello wire.Hello
	// Handler receives messages and peer deaths. Required.
	Handler transport.Handler
	// MaxFrame is the largest payload accepted (0: wire.DefaultMaxFrameSize).
	MaxFrame uint32
	// BusyPoll makes read loops spin on non-blocking reads before parking,
	// and lets waiting callers read their answers themselves (Drive),
	// trading a core for latency.
	BusyPoll bool
	// Congestion is the congestion control algorithm of the connections
	// (TCP_CONGESTION: "reno", "cubic", "bbr", …). Empty means
	// BusyCongestion with BusyPoll and the system's default without;
	// SystemCongestion keeps the system's default (congestion.go). New
	// fails when the system does not let this process set it.
	Congestion string
	// Heartbeat is the keepalive interval of idle connections, DeadAfter
	// the silence after which a connection is declared dead.
	Heartbeat, DeadAfter time.Duration
	// DialTimeout bounds a dial plus the HELLO exchange.
	DialTimeout time.Duration
	// MaxBackoff bounds the wait between dials to a peer that refused.
	MaxBackoff time.Duration
	// WriteTimeout bounds one batched write.
	WriteTimeout time.Duration
	// Logger receives connection events; default discards.
	Logger *slog.Logger
}

// Transport is a TCP transport: one persistent connection per peer pair,
// used in both directions, dialed lazily by whichever side needs it first.
type Transport struct {
	cfg      Config
	ln       net.Listener
	noAccept atomic.Bool // StopAccepting closed ln
	helloBuf []byte      // encoded HELLO frame, also the heartbeat
	log      *slog.Logger
	// congestion is the congestion control of the connections, "" for
	// the system's default.
	congestion string

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	peers  map[uint32]*peer
	conns  map[*conn]struct{}
	closed bool

	bytesSent, bytesRecv   atomic.Uint64
	framesSent, framesRecv atomic.Uint64
	dials, dialFailures    atomic.Uint64
	badFrames              atomic.Uint64

	bufs framebuf.Pool

	tick  atomic.Uint64           // heartbeat ticks, from 1: writes renew their deadline per tick
	aside spin.Aside              // read loops wait here while callers drive
	park  *parkSet                // sockets of parked busy read loops (park.go)
	pokeF func()                  // t.pokeParked, made once for Drive's pacer
	live  atomic.Pointer[[]*conn] // conns as a slice, for Drive and the heartbeats; nil after Close
	// cur maps each peer to its current connection, for Send without mu;
	// replaced under mu whenever a peer's current connection changes.
	cur atomic.Pointer[map[uint32]*conn]
}

var (
	_ transport.Transport = (*Transport)(nil)
	_ transport.Driver    = (*Transport)(nil)
)

// peer is what the transport knows about one node. Guarded by Transport.mu.
type peer struct {
	id       uint32
	addr     string
	hello    wire.Hello
	cur      *conn
	dialing  chan struct{} // closed when the dial in progress ends
	dialErr  error
	backoff  time.Duration
	nextDial time.Time
}

// New starts a Transport, listening when cfg.Listen is set.
func New(cfg Config) (*Transport, error) {
	if cfg.Handler == nil {
		return nil, errors.New("tcp: Config.Handler is required")
	}
	if cfg.MaxFrame == 0 {
		cfg.MaxFrame = wire.DefaultMaxFrameSize
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.DeadAfter <= 0 {
		cfg.DeadAfter = DefaultDeadAfter
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	congestion := CongestionFor(cfg.Congestion, cfg.BusyPoll)
	if congestion != "" {
		if err := checkCongestion(congestion); err != nil {
			if cfg.Congestion != "" {
				return nil, err
			}
			// BusyPoll's own choice: without it only latency suffers.
			cfg.Logger.Warn("keeping the system's congestion control", "err", err)
			congestion = ""
		}
	}
	t := &Transport{cfg: cfg, log: cfg.Logger, congestion: congestion, peers: map[uint32]*peer{}, conns: map[*conn]struct{}{}}
	t.live.Store(&[]*conn{})
	t.tick.Store(1)
	t.ctx, t.cancel = context.WithCancel(context.Background())
	for id, addr := range cfg.Peers {
		if id != cfg.Self {
			t.peers[id] = &peer{id: id, addr: addr}
		}
	}
	park, err := newParkSet(cfg.BusyPoll)
	if err != nil {
		return nil, err
	}
	t.park = park
	t.pokeF = t.pokeParked
	if cfg.Listen != "" {
		ln, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			park.close()
			return nil, err
		}
		t.ln = ln
	}
	h := cfg.Hello
	h.Node = cfg.Self
	h.MaxFrame = cfg.MaxFrame
	if h.Listen == "" && t.ln != nil {
		h.Listen = t.ln.Addr().String()
	}
	if cfg.BusyPoll {
		h.Caps |= wire.CapBusyPoll
	}
	t.helloBuf, err = wire.AppendFrame(nil, wire.Header{Source: cfg.Self}, &h)
	if err != nil {
		if t.ln != nil {
			t.ln.Close()
		}
		park.close()
		return nil, err
	}
	if t.ln != nil {
		t.wg.Add(1)
		go t.acceptLoop()
	}
	t.wg.Add(1)
	go t.heartbeatLoop()
	return t, nil
}

// StopAccepting implements transport.Drainer: no new inbound connections;
// the current ones, and dialing out, keep working.
func (t *Transport) StopAccepting() {
	if t.ln != nil && !t.noAccept.Swap(true) {
		t.ln.Close()
	}
}

// Addr is the listener's address, or nil when not listening.
func (t *Transport) Addr() net.Addr {
	if t.ln == nil {
		return nil
	}
	return t.ln.Addr()
}

// SetPeerAddr records (or replaces) the address to dial peer id at.
func (t *Transport) SetPeerAddr(id uint32, addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.peerLocked(id)
	p.addr = addr
	p.nextDial = time.Time{}
}

func (t *Transport) peerLocked(id uint32) *peer {
	p := t.peers[id]
	if p == nil {
		p = &peer{id: id}
		t.peers[id] = p
	}
	return p
}

// Send implements transport.Transport.
func (t *Transport) Send(id uint32, h wire.Header, m wire.Message) error {
	c, err := t.connFor(id)
	if err != nil {
		return err
	}
	h.Source = t.cfg.Self
	if done, err := c.sendDirect(h, m); done {
		return err
	}
	buf, err := c.encode(t.bufs.Get(), h, m)
	if err != nil {
		t.bufs.Put(buf)
		return err
	}
	return c.enqueue(buf)
}

// encode appends m's frame to dst, within the peer's frame limit.
func (c *conn) encode(dst []byte, h wire.Header, m wire.Message) ([]byte, error) {
	buf, err := wire.AppendFrame(dst, h, m)
	if err != nil {
		return buf, err
	}
	if n := len(buf) - wire.HeaderSize; uint64(n) > uint64(c.maxFrame) {
		return buf, fmt.Errorf("tcp: %v of %d bytes to peer %d: %w (its limit is %d)", m.Type(), n, c.peer, wire.ErrTooLarge, c.maxFrame)
	}
	return buf, nil
}

// wbufMax bounds the connection's own frame buffer kept between sends.
const wbufMax = 64 << 10

// sendDirect is Send when nothing is queued or being written: it encodes
// m into the connection's own buffer and writes it at once, without the
// hand-off to the writer goroutine (two context switches on a round trip)
// or a pooled buffer (four sync.Pool operations a frame). It reports
// false, having done nothing, when the frame must queue instead (or the
// connection is closed: enqueue says so).
func (c *conn) sendDirect(h wire.Header, m wire.Message) (bool, error) {
	c.mu.Lock()
	// backlog counts frames not yet written: a frame never overtakes one
	// queued before it.
	if c.closed || c.backlog != 0 || !c.wmu.TryLock() {
		c.mu.Unlock()
		return false, nil
	}
	c.mu.Unlock()
	buf, err := c.encode(c.wbuf[:0], h, m)
	if err != nil {
		c.wmu.Unlock()
		return true, err
	}
	c.sends.Add(1)
	n, err := c.writeOne(buf)
	c.t.bytesSent.Add(uint64(n))
	c.t.framesSent.Add(1)
	if cap(buf) <= wbufMax {
		c.wbuf = buf[:0]
	} else {
		c.wbuf = nil
	}
	c.wmu.Unlock()
	if err != nil {
		c.close(err)
		return true, &transport.PeerDownError{Peer: c.peer, Err: err}
	}
	return true, nil
}

// Connect implements transport.Transport.
func (t *Transport) Connect(id uint32) error {
	_, err := t.connFor(id)
	return err
}

// connFor returns the live connection to id, dialing when there is none.
// Concurrent callers share one dial; after a failed dial, callers fail
// fast until the backoff has passed.
func (t *Transport) connFor(id uint32) (*conn, error) {
	if m := t.cur.Load(); m != nil {
		if c := (*m)[id]; c != nil {
			return c, nil
		}
	}
	t.mu.Lock()
	for {
		if t.closed {
			t.mu.Unlock()
			return nil, transport.ErrClosed
		}
		p := t.peers[id]
		if p == nil || (p.addr == "" && p.cur == nil) {
			t.mu.Unlock()
			if id == t.cfg.Self {
				return nil, fmt.Errorf("tcp: %w: %d is this node", transport.ErrUnknownPeer, id)
			}
			return nil, fmt.Errorf("tcp: %w: no address for node %d", transport.ErrUnknownPeer, id)
		}
		if p.cur != nil {
			c := p.cur
			t.mu.Unlock()
			return c, nil
		}
		if p.dialing != nil {
			ch := p.dialing
			t.mu.Unlock()
			<-ch
			t.mu.Lock()
			if p.cur == nil && p.dialErr != nil {
				err := p.dialErr
				t.mu.Unlock()
				return nil, err
			}
			continue
		}
		if now := time.Now(); now.Before(p.nextDial) {
			err := p.dialErr
			t.mu.Unlock()
			return nil, err
		}
		ch := make(chan struct{})
		p.dialing = ch
		addr := p.addr
		t.mu.Unlock()

		c, err := t.dial(id, addr)

		t.mu.Lock()
		p.dialing = nil
		close(ch)
		if err != nil {
			p.dialErr = &transport.PeerDownError{Peer: id, Err: err}
			p.backoff = min(max(2*p.backoff, minBackoff), t.cfg.MaxBackoff)
			p.nextDial = time.Now().Add(p.backoff)
			err := p.dialErr
			t.mu.Unlock()
			return nil, err
		}
		p.backoff, p.dialErr = 0, nil
		if !t.installLocked(c) {
			t.mu.Unlock()
			return nil, transport.ErrClosed
		}
	}
}

// dial connects to addr and exchanges HELLO, expecting node id.
func (t *Transport) dial(id uint32, addr string) (*conn, error) {
	t.dials.Add(1)
	d := net.Dialer{Timeout: t.cfg.DialTimeout}
	ctx, cancel := context.WithTimeout(t.ctx, t.cfg.DialTimeout)
	defer cancel()
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.dialFailures.Add(1)
		return nil, err
	}
	c, err := t.handshake(nc, true, id)
	if err != nil {
		t.dialFailures.Add(1)
		return nil, err
	}
	t.log.Debug("connected", "peer", id, "addr", addr)
	return c, nil
}

func (t *Transport) acceptLoop() {
	defer t.wg.Done()
	for {
		nc, err := t.ln.Accept()
		if err != nil {
			if t.ctx.Err() != nil || t.noAccept.Load() {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			t.log.Warn("accept", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			c, err := t.handshake(nc, false, 0)
			if err != nil {
				t.log.Debug("inbound handshake failed", "remote", nc.RemoteAddr(), "err", err)
				return
			}
			// Install before our HELLO goes out: once the dialer has it,
			// it may start work that comes back to it through another
			// node, which must find this connection (and the dialer's
			// address) here. Holding the write lock keeps frames sent
			// meanwhile behind the HELLO.
			c.wmu.Lock()
			t.mu.Lock()
			ok := t.installLocked(c)
			t.mu.Unlock()
			if !ok {
				c.wmu.Unlock()
				c.close(transport.ErrClosed)
				return
			}
			nc.SetWriteDeadline(time.Now().Add(t.cfg.DialTimeout))
			_, err = nc.Write(t.helloBuf)
			nc.SetWriteDeadline(time.Time{})
			c.wmu.Unlock()
			if err != nil {
				c.close(err)
				return
			}
			t.bytesSent.Add(uint64(len(t.helloBuf)))
			t.framesSent.Add(1)
		}()
	}
}

// setCongestion gives tc the transport's congestion control. New has
// checked that the system allows it: a failure here costs only latency.
func (t *Transport) setCongestion(tc *net.TCPConn) {
	rc, err := tc.SyscallConn()
	if err == nil {
		cerr := rc.Control(func(fd uintptr) { err = SetCongestion(int(fd), t.congestion) })
		err = errors.Join(err, cerr)
	}
	if err != nil {
		t.log.Debug("congestion control not set", "remote", tc.RemoteAddr(), "err", err)
	}
}

// handshake exchanges HELLO on a fresh connection. The dialer writes first
// and checks that the peer is the node it meant (want); the acceptor reads
// first, answers a first frame that is not a HELLO with ERROR, and sends
// its HELLO once the connection is installed (acceptLoop).
func (t *Transport) handshake(nc net.Conn, dialed bool, want uint32) (*conn, error) {
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true) // Go's default, but latency depends on it
		if t.congestion != "" {
			t.setCongestion(tc)
		}
	}
	deadline := time.Now().Add(t.cfg.DialTimeout)
	nc.SetDeadline(deadline)
	fail := func(err error) (*conn, error) {
		nc.Close()
		return nil, err
	}
	if dialed {
		if _, err := nc.Write(t.helloBuf); err != nil {
			return fail(err)
		}
	}
	sr := newSockReader(nc)
	rb := newRecvBuf(sr)
	f, err := wire.ReadFrame(rb, t.cfg.MaxFrame, nil)
	if err != nil {
		if !dialed && f.Type != 0 {
			t.writeError(nc, f.RequestID, wire.CodeTooLarge, err.Error())
		} else if !dialed && (errors.Is(err, wire.ErrBadMagic) || errors.Is(err, wire.ErrVersion)) {
			t.writeError(nc, 0, wire.CodeBadFrame, err.Error())
		}
		return fail(fmt.Errorf("%w: %w", transport.ErrHandshake, err))
	}
	if f.Type != wire.TypeHello {
		if !dialed {
			t.writeError(nc, f.RequestID, wire.CodeBadFrame, "tcp: first frame must be HELLO, got "+f.Type.String())
		}
		return fail(fmt.Errorf("%w: first frame is %v, not HELLO", transport.ErrHandshake, f.Type))
	}
	var h wire.Hello
	if err := h.Decode(f.Payload); err != nil {
		if !dialed {
			t.writeError(nc, f.RequestID, wire.CodeBadFrame, err.Error())
		}
		return fail(fmt.Errorf("%w: %w", transport.ErrHandshake, err))
	}
	if h.Node == t.cfg.Self {
		return fail(fmt.Errorf("%w: peer claims this node's id %d", transport.ErrHandshake, h.Node))
	}
	if dialed && h.Node != want {
		return fail(fmt.Errorf("%w: dialed node %d, but %s is node %d", transport.ErrHandshake, want, nc.RemoteAddr(), h.Node))
	}
	nc.SetDeadline(time.Time{})
	t.bytesRecv.Add(uint64(wire.HeaderSize + len(f.Payload)))
	t.framesRecv.Add(1)
	if dialed { // the acceptor answers after installing (acceptLoop)
		t.bytesSent.Add(uint64(len(t.helloBuf)))
		t.framesSent.Add(1)
	}
	dialer := h.Node
	if dialed {
		dialer = t.cfg.Self
	}
	maxFrame := h.MaxFrame
	if maxFrame == 0 {
		maxFrame = wire.DefaultMaxFrameSize
	}
	c := &conn{t: t, nc: nc, sr: sr, rb: rb, peer: h.Node, dialer: dialer, hello: h, maxFrame: maxFrame,
		kick: make(chan struct{}, 1), done: make(chan struct{}), since: time.Now()}
	if sr.rc != nil {
		c.raw = newRawFD(nc)
		sr.raw = c.raw
	}
	if c.raw != nil && t.park.fd >= 0 {
		sr.pokable = true // the handshake's deadline is cleared: deadlines from now on are pokes
	}
	now := time.Now().UnixNano()
	c.hbRecvAt, c.hbSentAt = now, now
	return c, nil
}

// writeError answers on a connection that has no conn yet.
func (t *Transport) writeError(nc net.Conn, req uint64, code wire.ErrorCode, text string) {
	t.badFrames.Add(1)
	b, err := wire.AppendFrame(nil, wire.Header{RequestID: req, Source: t.cfg.Self}, wire.NewError(code, req, text))
	if err == nil {
		nc.Write(b)
	}
}

// installLocked makes c the connection to its peer and starts its loops.
// When a live connection exists already (both sides dialed at once), both
// sides keep the one dialed by the lower node id, and the other one is
// closed after a grace period. It reports false after Close.
func (t *Transport) installLocked(c *conn) bool {
	if t.closed {
		return false
	}
	p := t.peerLocked(c.peer)
	p.hello = c.hello
	if p.addr == "" {
		p.addr = c.hello.Listen
	}
	t.conns[c] = struct{}{}
	t.publishLocked()
	t.wg.Add(2)
	go c.readLoop()
	go c.writeLoop()
	old := p.cur
	if old == nil || old.isClosed() {
		p.cur = c
		t.publishCurLocked()
		return true
	}
	low := min(t.cfg.Self, c.peer)
	keep, lose := old, c
	if (c.dialer == low && old.dialer != low) || c.dialer == old.dialer {
		keep, lose = c, old
	}
	p.cur = keep
	t.publishCurLocked()
	time.AfterFunc(graceClose, func() { lose.close(errors.New("tcp: duplicate connection")) })
	return true
}

func (t *Transport) heartbeatLoop() {
	defer t.wg.Done()
	// Silence is seen at the tick that finds a count unchanged, so a peer
	// is declared dead between DeadAfter+tick and DeadAfter+2 ticks after
	// its last frame: 0.9–1.0 s with the defaults.
	tick := time.NewTicker(min(t.cfg.Heartbeat, t.cfg.DeadAfter/8))
	defer tick.Stop()
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-tick.C:
		}
		live := t.live.Load()
		if live == nil {
			return // closed
		}
		t.tick.Add(1)
		now := time.Now().UnixNano()
		for _, c := range *live {
			if r := c.recvs.Load(); r != c.hbRecvs || c.inHandler.Load() {
				c.hbRecvs, c.hbRecvAt = r, now
			}
			if silent := time.Duration(now - c.hbRecvAt); silent > t.cfg.DeadAfter {
				c.close(fmt.Errorf("tcp: no frame for %v (heartbeat)", silent.Round(time.Millisecond)))
				continue
			}
			if s := c.sends.Load(); s != c.hbSends {
				c.hbSends, c.hbSentAt = s, now
			}
			if time.Duration(now-c.hbSentAt) >= t.cfg.Heartbeat {
				b := append(t.bufs.Get(), t.helloBuf...)
				c.enqueue(b)
				c.hbSends, c.hbSentAt = c.sends.Load(), now
			}
		}
	}
}

// Peers implements transport.Transport.
func (t *Transport) Peers() []transport.PeerInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]transport.PeerInfo, 0, len(t.peers))
	for _, p := range t.peers {
		pi := transport.PeerInfo{ID: p.id, Addr: p.addr, Hello: p.hello}
		if p.cur != nil && !p.cur.isClosed() {
			pi.Connected, pi.Since = true, p.cur.since
		}
		out = append(out, pi)
	}
	return out
}

// Stats implements transport.Transport.
func (t *Transport) Stats() transport.Stats {
	return transport.Stats{
		BytesSent: t.bytesSent.Load(), BytesRecv: t.bytesRecv.Load(),
		FramesSent: t.framesSent.Load(), FramesRecv: t.framesRecv.Load(),
		Dials: t.dials.Load(), DialFailures: t.dialFailures.Load(),
		BadFrames: t.badFrames.Load(),
	}
}

// Close implements transport.Transport.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.publishCurLocked() // empty: Send takes the slow path and fails
	conns := *t.live.Swap(nil)
	t.mu.Unlock()
	t.cancel()
	if t.ln != nil {
		t.ln.Close()
	}
	for _, c := range conns {
		c.close(transport.ErrClosed)
	}
	t.wg.Wait()
	t.park.close()
	return nil
}

// conn is one TCP connection to a peer, after HELLO.
type conn struct {
	t        *Transport
	nc       net.Conn
	sr       *sockReader
	raw      *rawFD       // nc's descriptor for bare calls and park events; nil when it has none
	parked   bool         // the loop's socket is in t.park; owned by the read loop
	rmu      sync.Mutex   // the receive role: held to read rb (see recv.go)
	rb       *recvBuf     // guarded by rmu
	dec      wire.Decoder // the messages frames decode into; guarded by rmu
	rxDone   atomic.Bool  // reading has ended: the stream lost its framing
	peer     uint32
	dialer   uint32 // node id of the side that dialed
	hello    wire.Hello
	maxFrame uint32 // the peer's limit
	since    time.Time

	mu      sync.Mutex
	queue   [][]byte
	backlog int // frames queued or being written by writeLoop
	kick    chan struct{}

	wmu       sync.Mutex // held while writing to nc
	renewTick uint64     // Transport.tick when the write deadline was set; guarded by wmu
	wbuf      []byte     // sendDirect's frame buffer, guarded by wmu
	iov       [][]byte   // write's copy of a frame list for writev, guarded by wmu
	done      chan struct{}
	closed    bool
	err       error

	// recvs and sends count frames received and sent, so that the hot
	// paths read no clock: the heartbeat loop watches the counts, and
	// hbRecvs/hbRecvAt and hbSends/hbSentAt, its own, are the counts it
	// saw last and when it saw them change (UnixNano).
	recvs, sends       atomic.Uint64
	hbRecvs, hbSends   uint64
	hbRecvAt, hbSentAt int64
	// inHandler is set while the read loop waits for the Handler (a SHIP
	// being verified and linked): the peer is not silent, we are busy.
	inHandler atomic.Bool
}

func (c *conn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// enqueue hands buf (a whole frame from t.bufs) to the writer.
func (c *conn) enqueue(buf []byte) error {
	c.mu.Lock()
	if c.closed {
		err := c.err
		c.mu.Unlock()
		c.t.bufs.Put(buf)
		return &transport.PeerDownError{Peer: c.peer, Err: err}
	}
	c.sends.Add(1)
	c.queue = append(c.queue, buf)
	c.backlog++
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
	return nil
}

// write sends frames with one writev and recycles their buffers. The
// caller holds wmu.
//
// The write deadline is renewed once per heartbeat tick, not per write: a
// new deadline re-arms a runtime timer (and may wake the netpoller), which
// on a loopback round trip of ~12 µs is not free. A write that blocks
// still fails after WriteTimeout less at most one tick.
func (c *conn) write(q [][]byte) error {
	var n int64
	var err error
	if len(q) == 1 {
		var m int
		m, err = c.writeOne(q[0])
		n = int64(m)
	} else {
		// WriteTo consumes the slice it is given, clearing its elements:
		// hand it a copy, so that q still holds the buffers to recycle.
		c.iov = append(c.iov[:0], q...)
		bufs := net.Buffers(c.iov)
		c.renewDeadline()
		n, err = bufs.WriteTo(c.nc)
		clear(c.iov) // WriteTo left references after an error; the buffers go back to the pool
	}
	c.t.bytesSent.Add(uint64(n))
	c.t.framesSent.Add(uint64(len(q)))
	for i, b := range q {
		c.t.bufs.Put(b)
		q[i] = nil
	}
	return err
}

// writeOne writes b: with a bare sendto(2) first (rawio.go), and through
// nc, which waits for the socket to take the rest, only when that one did
// not take it all. The caller holds wmu.
func (c *conn) writeOne(b []byte) (int, error) {
	c.renewDeadline()
	if c.raw == nil {
		return c.nc.Write(b)
	}
	n, err := c.raw.write(b)
	if err == nil && n == len(b) {
		return n, nil
	}
	if err != nil && err != syscall.EAGAIN {
		return n, err
	}
	m, err := c.nc.Write(b[n:])
	return n + m, err
}

// renewDeadline sets the write deadline once per heartbeat tick (see
// write); the caller holds wmu.
func (c *conn) renewDeadline() {
	if tick := c.t.tick.Load(); tick != c.renewTick {
		c.nc.SetWriteDeadline(time.Now().Add(c.t.cfg.WriteTimeout))
		c.renewTick = tick
	}
}

// close shuts the connection down once; if it was its peer's current
// connection, the handler hears that the peer is down.
func (c *conn) close(err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed, c.err = true, err
	q := c.queue
	c.queue = nil
	c.mu.Unlock()
	close(c.done)
	if c.raw != nil {
		c.raw.shut() // no bare call may outlive the descriptor
	}
	c.nc.Close()
	for _, b := range q {
		c.t.bufs.Put(b)
	}
	t := c.t
	t.mu.Lock()
	delete(t.conns, c)
	if !t.closed {
		t.publishLocked()
	}
	p := t.peers[c.peer]
	wasCur := p != nil && p.cur == c
	if wasCur {
		p.cur = nil
		t.publishCurLocked()
	}
	closing := t.closed
	t.mu.Unlock()
	if wasCur && !closing {
		t.log.Info("peer down", "peer", c.peer, "err", err)
		t.cfg.Handler.PeerDown(c.peer, &transport.PeerDownError{Peer: c.peer, Err: err})
	}
}

func (c *conn) writeLoop() {
	defer c.t.wg.Done()
	var spare [][]byte
	for {
		select {
		case <-c.kick:
		case <-c.done:
			return
		}
		c.mu.Lock()
		q := c.queue
		c.queue = spare[:0]
		c.mu.Unlock()
		if len(q) == 0 {
			spare = q
			continue
		}
		c.wmu.Lock()
		err := c.write(q)
		c.wmu.Unlock()
		c.mu.Lock()
		c.backlog -= len(q)
		c.mu.Unlock()
		spare = q
		if err != nil {
			c.close(err)
			return
		}
	}
}

// answer queues an ERROR about a frame this connection delivered.
func (c *conn) answer(req uint64, code wire.ErrorCode, text string) {
	c.t.badFrames.Add(1)
	b, err := wire.AppendFrame(c.t.bufs.Get(), wire.Header{RequestID: req, Source: c.t.cfg.Self}, wire.NewError(code, req, text))
	if err != nil {
		c.t.bufs.Put(b)
		return
	}
	c.enqueue(b)
}

// publishCurLocked makes the peers' current connections visible to
// Send; the caller holds mu.
func (t *Transport) publishCurLocked() {
	m := make(map[uint32]*conn, len(t.peers))
	if !t.closed {
		for id, p := range t.peers {
			if p.cur != nil {
				m[id] = p.cur
			}
		}
	}
	t.cur.Store(&m)
}

// publishLocked makes the connections visible to Drive; the caller holds
// mu.
func (t *Transport) publishLocked() {
	cs := make([]*conn, 0, len(t.conns))
	for c := range t.conns {
		cs = append(cs, c)
	}
	t.live.Store(&cs)
}
