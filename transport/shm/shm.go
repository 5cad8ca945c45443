package shm

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/bcship/bcship/transport"
	"github.com/bcship/bcship/transport/internal/framebuf"
	"github.com/bcship/bcship/transport/internal/overlay"
	"github.com/bcship/bcship/transport/tcp"
	"github.com/bcship/bcship/wire"
)

// Defaults for Config's zero fields.
const (
	DefaultDir          = "/dev/shm"
	DefaultRingSize     = 1 << 20
	DefaultSpinFor      = 5 * time.Microsecond
	DefaultMaxQueued    = 64 << 20
	DefaultSetupTimeout = 2 * time.Second
	DefaultRetryAfter   = 5 * time.Second
)

// Config configures a Transport.
type Config struct {
	// TCP configures the transport underneath: Self, Listen, Peers, Hello,
	// Handler, MaxFrame, BusyPoll, heartbeats. Its Handler is the node's;
	// the shared-memory transport wraps it. CapSharedMemory is added to
	// Hello.Caps.
	TCP tcp.Config
	// Dir is where segment files are created and opened; default
	// /dev/shm. Both peers must see the same directory.
	Dir string
	// RingSize is the bytes of each direction's ring, a power of two
	// (rounded up) within [MinRingSize, MaxRingSize]; default 1 MiB.
	// Frames of any size fit: larger ones stream through.
	RingSize int
	// SpinFor is how long the receive loop polls the rings after the last
	// frame before it sleeps on their futexes (and how long a send loop
	// polls a full ring). TCP.BusyPoll makes both poll forever. The
	// default is short: on two vCPUs, longer spins took the processor from
	// the nodes' own work (a three-node chase in one process: 16–21 µs a
	// hop at 5 µs, 30–32 at 20 µs, 45–49 at 50 µs; an invoke round trip
	// was 2.9 µs at p50 with each, its p99 51–73 µs at 5 µs, 137–140 at
	// 50 µs).
	SpinFor time.Duration
	// MaxQueued bounds the bytes of frames waiting for ring space per peer;
	// beyond it Send fails with ErrQueueFull.
	MaxQueued int
	// SetupTimeout bounds a setup (one TCP round trip and two mmaps).
	SetupTimeout time.Duration
	// RetryAfter is how long a peer whose setup failed for a passing
	// reason (a timeout) is reached over TCP before the next attempt.
	RetryAfter time.Duration
}

// Transport moves frames through shared memory to peers on the same host
// and over TCP to the others. See the package documentation.
type Transport struct {
	cfg     Config
	tcp     *tcp.Transport
	h       transport.Handler
	log     *slog.Logger
	self    uint32
	host    string // hostID(); a test may change it before the first setup
	enabled bool   // Dir is usable: we offer and accept shared memory

	mu     sync.Mutex
	peers  overlay.Peers[*conn, ctrlMsg]
	closed bool
	wg     sync.WaitGroup // the receive loop and the connections' send loops
	rcv    receiver

	ctr overlay.Counters // shared-memory traffic

	bufs framebuf.Pool
}

var _ transport.Endpoint = (*Transport)(nil)

// peerState is the shared-memory side of one peer: Reply takes ACCEPT or
// REJECT, or a Kind 0 message when the link died. Guarded by
// Transport.mu, except Order.
//
// Order keeps frames in order when the peer moves from TCP to shared
// memory: a sender holds it shared from choosing TCP until its frame is
// in the TCP stream, and a setup takes it exclusively before the OFFER
// goes out (initiator) or before the connection is installed (acceptor).
// So every frame sent over TCP before the switch precedes the OFFER (or
// ACCEPT) in the TCP stream, and the peer delivers it before it reads
// anything from the ring.
type peerState = overlay.Peer[*conn, ctrlMsg]

// New starts the TCP transport underneath. A Dir that is not a usable
// directory is no error: the transport then runs on TCP alone and does
// not announce CapSharedMemory.
func New(cfg Config) (*Transport, error) {
	if cfg.TCP.Handler == nil {
		return nil, errors.New("shm: Config.TCP.Handler is required")
	}
	if cfg.Dir == "" {
		cfg.Dir = DefaultDir
	}
	if cfg.RingSize <= 0 {
		cfg.RingSize = DefaultRingSize
	}
	cfg.RingSize = ringSize(cfg.RingSize)
	if cfg.SpinFor <= 0 {
		cfg.SpinFor = DefaultSpinFor
	}
	if cfg.MaxQueued <= 0 {
		cfg.MaxQueued = DefaultMaxQueued
	}
	if cfg.SetupTimeout <= 0 {
		cfg.SetupTimeout = DefaultSetupTimeout
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = DefaultRetryAfter
	}
	if cfg.TCP.MaxFrame == 0 {
		cfg.TCP.MaxFrame = wire.DefaultMaxFrameSize
	}
	log := cfg.TCP.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Transport{cfg: cfg, h: cfg.TCP.Handler, log: log, self: cfg.TCP.Self, host: hostID(),
		peers: overlay.Peers[*conn, ctrlMsg]{}}
	if fi, err := os.Stat(cfg.Dir); err != nil || !fi.IsDir() {
		log.Info("no shared memory: peers are reached over TCP", "dir", cfg.Dir, "err", err)
	} else {
		t.enabled = true
	}
	tc := cfg.TCP
	tc.Handler = &overlay.Tap{Name: ctrlHandler, Node: t.h, Ctrl: t.onCtrl, LinkDown: t.linkDown}
	if t.enabled {
		tc.Hello.Caps |= wire.CapSharedMemory
	}
	tt, err := tcp.New(tc)
	if err != nil {
		return nil, err
	}
	t.tcp = tt
	t.rcv.kick = make(chan struct{}, 1)
	t.rcv.closing = make(chan struct{})
	t.rcv.waitv.Store(haveFutexWaitv())
	t.wg.Add(1)
	go t.recvLoop()
	return t, nil
}

// ringSize rounds n up to a power of two within the bounds.
func ringSize(n int) int {
	s := MinRingSize
	for s < n && s < MaxRingSize {
		s <<= 1
	}
	return s
}

// Addr is the TCP listener's address, or nil.
func (t *Transport) Addr() net.Addr { return t.tcp.Addr() }

// StopAccepting implements transport.Drainer (the control listener: no
// new peers; connected ones keep their fast path).
func (t *Transport) StopAccepting() { t.tcp.StopAccepting() }

// SetPeerAddr records the TCP address of peer id.
func (t *Transport) SetPeerAddr(id uint32, addr string) { t.tcp.SetPeerAddr(id, addr) }

// Send implements transport.Transport: through the peer's ring when it
// shares memory with us (setting that up on first use), else over TCP.
// It never blocks on a full ring: the frame waits in a queue bounded by
// MaxQueued.
func (t *Transport) Send(peer uint32, h wire.Header, m wire.Message) error {
	for {
		c, ps, err := t.connFor(peer)
		if err != nil {
			return err
		}
		if c != nil {
			return t.sendShm(c, h, m)
		}
		ps.Order.RLock()
		t.mu.Lock()
		onTCP := ps.Dialing == nil && (ps.Conn == nil || ps.Conn.isDead())
		t.mu.Unlock()
		if onTCP {
			err := t.tcp.Send(peer, h, m)
			ps.Order.RUnlock()
			return err
		}
		ps.Order.RUnlock() // a setup began meanwhile: wait for it
	}
}

func (t *Transport) sendShm(c *conn, h wire.Header, m wire.Message) error {
	h.Source = t.self
	buf, err := wire.AppendFrame(t.bufs.Get(), h, m)
	if err != nil {
		t.bufs.Put(buf)
		return err
	}
	if n := len(buf) - wire.HeaderSize; uint64(n) > uint64(c.maxFrame) {
		t.bufs.Put(buf)
		return fmt.Errorf("shm: %v of %d bytes to peer %d: %w (its limit is %d)", m.Type(), n, c.peer, wire.ErrTooLarge, c.maxFrame)
	}
	return c.enqueue(buf)
}

// Connect implements transport.Transport: the TCP connection, then the
// shared-memory one when the peer is on this host.
func (t *Transport) Connect(peer uint32) error {
	c, _, err := t.connFor(peer)
	if err == nil && c == nil {
		err = t.tcp.Connect(peer)
	}
	return err
}

// connFor returns the shared-memory connection to peer, setting it up if
// needed, or a nil conn when the peer is to be reached over TCP.
func (t *Transport) connFor(peer uint32) (*conn, *peerState, error) {
	t.mu.Lock()
	for {
		if t.closed {
			t.mu.Unlock()
			return nil, nil, transport.ErrClosed
		}
		ps := t.peers.Get(peer)
		if c := ps.Conn; c != nil && !c.isDead() {
			t.mu.Unlock()
			return c, ps, nil
		}
		if ch := ps.Dialing; ch != nil {
			// Unlike rdma, whatever that setup's end, the next turn
			// finds the way: a connection, or TCP for a while.
			t.mu.Unlock()
			<-ch
			t.mu.Lock()
			continue
		}
		if !t.enabled || ps.TCPOnly || time.Now().Before(ps.RetryAt) {
			t.mu.Unlock()
			return nil, ps, nil
		}
		ps.Begin()
		t.mu.Unlock()

		c, err := t.dial(peer, ps)

		t.mu.Lock()
		// SetupErr is not read here: the failure is acted on at once.
		ps.End(err)
		if err != nil {
			if overlay.Fatal(err) {
				t.mu.Unlock()
				return nil, nil, err
			}
			// TCP works: use it for a while.
			ps.RetryAt = time.Now().Add(t.cfg.RetryAfter)
			t.log.Warn("shared-memory setup failed; using TCP", "peer", peer, "err", err)
			continue
		}
		if c != nil && !t.installLocked(ps, c) {
			t.mu.Unlock()
			c.seg.unmap()
			return nil, nil, transport.ErrClosed
		}
		// Installed, or TCP only, or the peer's simultaneous setup won:
		// the next turn finds which.
	}
}

// installLocked makes c its peer's connection and starts its loops.
func (t *Transport) installLocked(ps *peerState, c *conn) bool {
	if t.closed {
		return false
	}
	if old := ps.Conn; old != nil && old != c {
		// The peer set up a new connection: it gave the old one up, and
		// whatever was in flight on it is lost. (fail cannot tell the node:
		// old is no longer the peer's connection.)
		go func() {
			err := errors.New("shm: replaced by a new connection")
			if !old.isDead() {
				old.fail(err, false)
				t.h.PeerDown(old.peer, &transport.PeerDownError{Peer: old.peer, Err: err})
			}
		}()
	}
	ps.Conn = c
	t.wg.Add(1)
	c.start()
	t.log.Debug("shared memory connected", "peer", c.peer, "ring", c.seg.ringSize)
	return true
}

// dial runs our side of a setup as initiator. It returns nil, nil when
// the peer is to be reached over TCP or its own simultaneous setup won.
func (t *Transport) dial(peer uint32, ps *peerState) (*conn, error) {
	if err := t.tcp.Connect(peer); err != nil {
		return nil, err
	}
	hello, ok := overlay.Hello(t.tcp, peer)
	if !ok || !hello.Caps.Has(wire.CapSharedMemory) {
		t.mu.Lock()
		ps.TCPOnly = true
		t.mu.Unlock()
		return nil, nil
	}
	seg, token, err := createSegment(t.cfg.Dir, t.cfg.RingSize)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSetup, err)
	}
	ps.Order.Lock() // frames already on their way over TCP go first
	ps.Order.Unlock()
	t.mu.Lock()
	nonce, reply := ps.Nonce, ps.Reply
	t.mu.Unlock()
	offer := &ctrlMsg{Kind: ctrlOffer, Nonce: nonce, Host: t.host, Name: filepath.Base(seg.path), Token: token}
	if err := t.sendCtrl(peer, offer); err != nil {
		seg.unmap()
		return nil, err
	}
	timer := time.NewTimer(t.cfg.SetupTimeout)
	defer timer.Stop()
	select {
	case m := <-reply:
		switch {
		case m.Kind == ctrlAccept:
			seg.unlink()
			return t.newConn(peer, hello.MaxFrame, seg, true), nil
		case m.Kind == 0:
			seg.unmap()
			return nil, &transport.PeerDownError{Peer: peer, Err: errors.New("shm: link lost during setup")}
		case m.Reason == reasonCollision:
			// The peer's setup (lower id) becomes the connection; its
			// OFFER is on the way, or the peer has yet to notice that we
			// gave its last connection up. Give it a moment rather than
			// set up again at once.
			seg.unmap()
			for range 50 {
				t.mu.Lock()
				up := ps.Conn != nil
				t.mu.Unlock()
				if up {
					break
				}
				time.Sleep(100 * time.Microsecond)
			}
			return nil, nil
		default:
			// Another host, another /dev/shm, another user: nothing a
			// retry changes while this TCP link lasts.
			seg.unmap()
			t.log.Info("no shared memory with peer; using TCP", "peer", peer, "reason", m.Reason)
			t.mu.Lock()
			ps.TCPOnly = true
			t.mu.Unlock()
			return nil, nil
		}
	case <-timer.C:
		// The peer may have mapped the segment and be reading it: tell it
		// we gave up.
		guard(func() error {
			seg.closed().Store(closedAbandon)
			seg.ring(0).wakeConsumer()
			return nil
		})
		seg.unmap()
		return nil, fmt.Errorf("%w: peer %d did not answer within %v", ErrSetup, peer, t.cfg.SetupTimeout)
	}
}

func (t *Transport) sendCtrl(peer uint32, m *ctrlMsg) error {
	return overlay.SendCtrl(t.tcp, t.self, ctrlHandler, peer, m.encode())
}

// accept answers a peer's OFFER: it maps the segment and installs the
// connection (the receive loop polls it) before ACCEPT leaves.
func (t *Transport) accept(from uint32, m ctrlMsg) {
	reject := func(reason string) {
		t.sendCtrl(from, &ctrlMsg{Kind: ctrlReject, Nonce: m.Nonce, Reason: reason})
	}
	// Both sides set up at once (or ours is up and the peer's OFFER
	// crossed our ACCEPT): the lower id's connection wins, on both sides.
	// An OFFER to the higher id, or over a connection the peer set up, is
	// always taken: the peer gave its old connection up.
	t.mu.Lock()
	ps := t.peers.Get(from)
	ours := ps.Dialing != nil || (ps.Conn != nil && ps.Conn.initiator && !ps.Conn.isDead())
	collide := ours && overlay.LowerWins(t.self, from)
	closed := t.closed
	t.mu.Unlock()
	switch {
	case closed:
		return
	case !t.enabled:
		reject("shared memory disabled")
		return
	case collide:
		reject(reasonCollision)
		return
	case m.Host != t.host:
		reject(reasonOtherHost)
		return
	}
	seg, err := openSegment(t.cfg.Dir, m.Name, m.Token)
	if err != nil {
		t.log.Info("no shared memory with peer; using TCP", "peer", from, "err", err)
		reject(err.Error())
		return
	}
	hello, _ := overlay.Hello(t.tcp, from)
	c := t.newConn(from, hello.MaxFrame, seg, false)
	ps.Order.Lock()
	t.mu.Lock()
	ok := t.installLocked(ps, c)
	t.mu.Unlock()
	ps.Order.Unlock()
	if !ok {
		seg.unmap()
		return
	}
	if err := t.sendCtrl(from, &ctrlMsg{Kind: ctrlAccept, Nonce: m.Nonce}); err != nil {
		c.fail(err, true)
	}
}

// linkDown: the TCP connection died, so the peer did (or is
// unreachable): its shared-memory connection goes too, a setup waiting
// for an answer hears at once (Kind 0), and the Tap then tells the node,
// once.
func (t *Transport) linkDown(peer uint32, err error) {
	t.mu.Lock()
	var c *conn
	if ps := t.peers[peer]; ps != nil {
		c = ps.LinkDown()
		ps.Answer(ctrlMsg{})
	}
	t.mu.Unlock()
	if c != nil {
		c.fail(err, false)
	}
}

func (t *Transport) onCtrl(from uint32, arg []byte) {
	m, err := decodeCtrl(arg)
	if err != nil {
		t.log.Warn("bad shared-memory control message", "peer", from, "err", err)
		return
	}
	if m.Kind == ctrlOffer {
		t.accept(from, m)
		return
	}
	t.mu.Lock()
	t.peers.Answer(from, m.Nonce, m)
	t.mu.Unlock()
}

// Peers implements transport.Transport (the TCP connections).
func (t *Transport) Peers() []transport.PeerInfo { return t.tcp.Peers() }

// Stats implements transport.Transport: TCP and shared-memory traffic
// together.
func (t *Transport) Stats() transport.Stats { return t.ctr.Add(t.tcp.Stats()) }

// ConnInfo describes one shared-memory connection.
type ConnInfo struct {
	Peer       uint32
	RingSize   int    // bytes per direction
	Queued     int    // frame bytes waiting for ring space
	FramesSent uint64 // through the ring
	FramesRecv uint64
	FullWaits  uint64 // times a frame found the ring full
}

// Conns describes the live shared-memory connections.
func (t *Transport) Conns() []ConnInfo {
	t.mu.Lock()
	cs := t.peers.Conns()
	t.mu.Unlock()
	out := make([]ConnInfo, 0, len(cs))
	for _, c := range cs {
		if !c.isDead() {
			out = append(out, c.info())
		}
	}
	return out
}

// Sleeps is how many times the receive loop has slept on its futexes.
func (t *Transport) Sleeps() uint64 { return t.rcv.sleeps.Load() }

// Close implements transport.Transport.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	cs := t.peers.TakeConns()
	for _, ps := range t.peers {
		ps.Answer(ctrlMsg{}) // a setup waiting for its answer ends now
	}
	t.mu.Unlock()
	err := t.tcp.Close()
	for _, c := range cs {
		c.fail(transport.ErrClosed, false)
	}
	t.rcv.stop.Store(true)
	select {
	case t.rcv.kick <- struct{}{}:
	default:
	}
	close(t.rcv.closing) // the loop may wait aside for a caller's Drive
	t.ringBell()
	t.wg.Wait()
	return err
}
