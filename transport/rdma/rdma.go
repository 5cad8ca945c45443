package rdma

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/bcship/bcship/transport"
	"github.com/bcship/bcship/transport/internal/overlay"
	"github.com/bcship/bcship/transport/tcp"
	"github.com/bcship/bcship/verbs"
	"github.com/bcship/bcship/wire"
)

// Defaults for Config's zero fields.
const (
	DefaultRecvSlots    = 64
	DefaultSlotSize     = 8 << 10
	DefaultSendSlots    = 32
	DefaultScratchSlots = 4
	DefaultScratchSize  = 256 << 10
	DefaultMaxQueued    = 64 << 20
	DefaultSetupTimeout = 2 * time.Second
	DefaultSpinFor      = 50 * time.Microsecond
	DefaultMaxSleep     = 500 * time.Microsecond
	DefaultMaxInline    = 256
	DefaultOpTimeout    = 750 * time.Millisecond // ErrPeerDown within 1 s, with room for the poller

	minSlots    = 4
	minSlotSize = 256
	// creditSlack is how many credit-only messages may be in flight; the
	// send queue is sized for them.
	creditSlack = 4
)

// Config configures a Transport.
type Config struct {
	// TCP configures the control transport: Self, Listen, Peers, Hello,
	// Handler, MaxFrame, heartbeats. Its Handler is the node's; the RDMA
	// transport wraps it. CapRDMA is added to Hello.Caps.
	TCP tcp.Config
	// Device is the RDMA device (e.g. "rxe0"); Port its port (default 1).
	Device string
	Port   uint8
	// RecvSlots and SlotSize shape each connection's receive ring: the
	// credits a peer gets and the largest SEND; larger frames are chunked.
	RecvSlots, SlotSize int
	// SendSlots is the number of registered send buffers (SlotSize each)
	// per connection: SENDs in flight.
	SendSlots int
	// MaxInline is the largest SEND copied into the work request itself
	// (no send buffer, no DMA from registered memory; the device may
	// allow less); negative: none.
	MaxInline int
	// ScratchSlots × ScratchSize is the registered staging memory for
	// one-sided READ/WRITE per connection; larger accesses are split.
	ScratchSlots, ScratchSize int
	// MaxQueued bounds the bytes of frames waiting for credits per peer;
	// beyond it Send fails with ErrQueueFull.
	MaxQueued int
	// SetupTimeout bounds an RDMA connection setup (one TCP round trip).
	SetupTimeout time.Duration
	// SpinFor is how long a CQ poller spins after its last completion
	// before it starts sleeping (doubling up to MaxSleep). TCP.BusyPoll
	// makes it spin forever.
	SpinFor, MaxSleep time.Duration
	// OpTimeout bounds a one-sided access; a QP that completes nothing in
	// that time is declared failed (ErrPeerDown).
	OpTimeout time.Duration
}

// Transport moves frames over RC queue pairs: one QP per peer, set up over
// the TCP control connection, completing on CQs shared by the connections
// (one poller goroutine each). Peers without RDMA are reached over that TCP
// connection.
type Transport struct {
	cfg  Config
	tcp  *tcp.Transport
	h    transport.Handler
	log  *slog.Logger
	self uint32

	vctx *verbs.Context
	pd   *verbs.PD
	gid  verbs.GIDInfo
	mtu  verbs.MTU

	mu      sync.Mutex
	peers   overlay.Peers[*conn, ctrlMsg]
	regions map[string]*localRegion
	retired map[*localRegion]struct{} // replaced, deregistered after retireAfter
	closed  bool
	pollers []*poller
	connSeq uint32
	wg      sync.WaitGroup // pollers
	conns   sync.WaitGroup // connections not yet destroyed

	ctr overlay.Counters // RDMA traffic
}

var (
	_ transport.Endpoint = (*Transport)(nil)
	_ transport.OneSided = (*Transport)(nil)
)

// peerState is the RDMA side of one peer: Reply takes ACCEPT or REJECT;
// TCPOnly means the peer has no RDMA. Its Order (taken exclusively)
// orders a dial's last check and CONNECT with an accept's install and
// ACCEPT (see dial). Guarded by Transport.mu, except Order.
type peerState = overlay.Peer[*conn, ctrlMsg]

type localRegion struct {
	name string
	buf  []byte
	mr   *verbs.MR
}

// New opens the RDMA device and starts the TCP control transport.
func New(cfg Config) (*Transport, error) {
	if cfg.TCP.Handler == nil {
		return nil, errors.New("rdma: Config.TCP.Handler is required")
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.RecvSlots, DefaultRecvSlots)
	def(&cfg.SlotSize, DefaultSlotSize)
	def(&cfg.SendSlots, DefaultSendSlots)
	def(&cfg.ScratchSlots, DefaultScratchSlots)
	def(&cfg.ScratchSize, DefaultScratchSize)
	def(&cfg.MaxQueued, DefaultMaxQueued)
	if cfg.MaxInline == 0 {
		cfg.MaxInline = DefaultMaxInline
	}
	cfg.RecvSlots = max(cfg.RecvSlots, minSlots)
	cfg.SlotSize = max(cfg.SlotSize, minSlotSize)
	if cfg.Port == 0 {
		cfg.Port = 1
	}
	if cfg.SetupTimeout <= 0 {
		cfg.SetupTimeout = DefaultSetupTimeout
	}
	if cfg.SpinFor <= 0 {
		cfg.SpinFor = DefaultSpinFor
	}
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = DefaultOpTimeout
	}
	if cfg.MaxSleep <= 0 {
		cfg.MaxSleep = DefaultMaxSleep
	}
	if cfg.TCP.MaxFrame == 0 {
		cfg.TCP.MaxFrame = wire.DefaultMaxFrameSize
	}
	log := cfg.TCP.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Transport{cfg: cfg, h: cfg.TCP.Handler, log: log, self: cfg.TCP.Self,
		peers: overlay.Peers[*conn, ctrlMsg]{}, regions: map[string]*localRegion{}, retired: map[*localRegion]struct{}{}}
	if err := t.openDevice(); err != nil {
		return nil, err
	}
	tc := cfg.TCP
	tc.Handler = &overlay.Tap{Name: ctrlHandler, Node: t.h, Ctrl: t.onCtrl, LinkDown: t.linkDown}
	tc.Hello.Caps |= wire.CapRDMA
	tt, err := tcp.New(tc)
	if err != nil {
		t.closeDevice()
		return nil, err
	}
	t.tcp = tt
	return t, nil
}

func (t *Transport) openDevice() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	vc, err := verbs.Open(ctx, t.cfg.Device, nil)
	if err != nil {
		return fmt.Errorf("%w: open %s: %w", ErrNoRDMA, t.cfg.Device, err)
	}
	fail := func(err error) error {
		vc.Close()
		return fmt.Errorf("%w: %s: %w", ErrNoRDMA, t.cfg.Device, err)
	}
	g, err := verbs.FindRoCEv2GID(t.cfg.Device, int(t.cfg.Port))
	if err != nil {
		return fail(err)
	}
	pa, err := vc.QueryPort(t.cfg.Port)
	if err != nil {
		return fail(err)
	}
	if pa.State != verbs.PortActive {
		return fail(fmt.Errorf("port %d is not active (state %d)", t.cfg.Port, pa.State))
	}
	pd, err := vc.AllocPD()
	if err != nil {
		return fail(err)
	}
	t.vctx, t.pd, t.gid, t.mtu = vc, pd, g, pa.ActiveMTU
	return nil
}

func (t *Transport) closeDevice() {
	for _, r := range t.regions {
		r.mr.Close()
	}
	for r := range t.retired {
		r.mr.Close()
	}
	t.pd.Close()
	t.vctx.Close()
}

// Addr is the control listener's address, or nil.
func (t *Transport) Addr() net.Addr { return t.tcp.Addr() }

// StopAccepting implements transport.Drainer (the control listener: no
// new peers; connected ones keep their fast path).
func (t *Transport) StopAccepting() { t.tcp.StopAccepting() }

// SetPeerAddr records the control address of peer id.
func (t *Transport) SetPeerAddr(id uint32, addr string) { t.tcp.SetPeerAddr(id, addr) }

// GID is the local RoCE v2 GID used for connections.
func (t *Transport) GID() net.IP { return t.gid.GID }

// Send implements transport.Transport: over the peer's RC QP when both
// sides have RDMA, else over TCP. It does not wait for credits: frames
// queue (up to MaxQueued bytes) and go out as credits return.
func (t *Transport) Send(peer uint32, h wire.Header, m wire.Message) error {
	c, err := t.connFor(peer)
	if err != nil {
		return err
	}
	if c == nil {
		return t.tcp.Send(peer, h, m)
	}
	h.Source = t.self
	buf, err := wire.AppendFrame(nil, h, m)
	if err != nil {
		return err
	}
	if n := len(buf) - wire.HeaderSize; uint64(n) > uint64(c.maxFrame) {
		return fmt.Errorf("rdma: %v of %d bytes to peer %d: %w (its limit is %d)", m.Type(), n, peer, wire.ErrTooLarge, c.maxFrame)
	}
	return c.enqueue(buf)
}

// Connect implements transport.Transport: the TCP connection, then the RC
// QP when the peer has RDMA.
func (t *Transport) Connect(peer uint32) error {
	_, err := t.connFor(peer)
	return err
}

// connFor returns the RDMA connection to peer, setting it up if needed,
// or nil when the peer is to be reached over TCP.
func (t *Transport) connFor(peer uint32) (*conn, error) {
	t.mu.Lock()
	for {
		if t.closed {
			t.mu.Unlock()
			return nil, transport.ErrClosed
		}
		ps := t.peers.Get(peer)
		if c := ps.Conn; c != nil && !c.isDead() {
			t.mu.Unlock()
			return c, nil
		}
		if ps.Dialing != nil {
			ch := ps.Dialing
			t.mu.Unlock()
			<-ch
			t.mu.Lock()
			// Unlike shm, a caller that waited for a setup that failed
			// gets its error.
			if ps.Conn == nil && ps.SetupErr != nil && !ps.TCPOnly {
				err := ps.SetupErr
				t.mu.Unlock()
				return nil, err
			}
			continue
		}
		if ps.TCPOnly || time.Now().Before(ps.RetryAt) {
			t.mu.Unlock()
			return nil, nil
		}
		ps.Begin()
		t.mu.Unlock()

		c, err := t.dial(peer, ps)

		t.mu.Lock()
		ps.End(err)
		if err != nil {
			if overlay.Fatal(err) {
				t.mu.Unlock()
				return nil, err
			}
			// RDMA failed but TCP works: use TCP for a while.
			ps.RetryAt = time.Now().Add(5 * time.Second)
			t.log.Warn("rdma setup failed; using TCP", "peer", peer, "err", err)
			t.mu.Unlock()
			return nil, nil
		}
		if c == nil { // no RDMA at the peer, or it set up the connection itself
			continue
		}
		if !t.installLocked(c) {
			t.mu.Unlock()
			c.destroy()
			return nil, transport.ErrClosed
		}
	}
}

// installLocked makes c its peer's connection.
func (t *Transport) installLocked(c *conn) bool {
	if t.closed {
		return false
	}
	ps := t.peers.Get(c.peer)
	if old := ps.Conn; old != nil && old != c {
		// The peer set up a new connection: it gave the old one up, and
		// whatever was in flight on it is lost.
		go old.fail(errors.New("rdma: replaced by a new connection"), true)
	}
	ps.Conn = c
	return true
}

// dial runs our side of a setup as initiator. It returns nil, nil when
// the peer has no RDMA or when the peer's own simultaneous setup won.
func (t *Transport) dial(peer uint32, ps *peerState) (*conn, error) {
	if err := t.tcp.Connect(peer); err != nil {
		return nil, err
	}
	hello, ok := overlay.Hello(t.tcp, peer)
	if !ok || !hello.Caps.Has(wire.CapRDMA) {
		t.mu.Lock()
		ps.TCPOnly = true
		t.mu.Unlock()
		return nil, nil
	}
	c, err := t.newConn(peer, hello)
	if err != nil {
		return nil, err
	}
	// The peer may have set up the connection while we made our QP (its
	// CONNECT crossed our dial): then ours must not go out, or it would
	// reach the peer after its setup finished and replace the connection
	// in use. Under ps.Order, the check and our CONNECT are ordered with
	// accept's install and ACCEPT on the control connection.
	ps.Order.Lock()
	t.mu.Lock()
	nonce, reply := ps.Nonce, ps.Reply
	live := ps.Conn != nil && ps.Conn != c && !ps.Conn.isDead()
	t.mu.Unlock()
	if live {
		ps.Order.Unlock()
		c.destroy()
		return nil, nil
	}
	err = t.sendCtrl(peer, &ctrlMsg{Kind: ctrlConnect, Nonce: nonce, EP: c.localEndpoint()})
	ps.Order.Unlock()
	if err != nil {
		c.destroy()
		return nil, err
	}
	timer := time.NewTimer(t.cfg.SetupTimeout)
	defer timer.Stop()
	select {
	case m := <-reply:
		if m.Kind == ctrlReject {
			c.destroy()
			if m.Reason == rejectCollision {
				return nil, nil // the peer's setup (lower id) becomes the connection
			}
			return nil, fmt.Errorf("%w: peer %d refused: %s", ErrSetup, peer, m.Reason)
		}
		if err := c.connect(m.EP); err != nil {
			c.destroy()
			return nil, err
		}
		c.ready = true
		if err := t.sendCtrl(peer, &ctrlMsg{Kind: ctrlReady, Nonce: nonce}); err != nil {
			c.destroy()
			return nil, err
		}
		t.log.Debug("rdma connected", "peer", peer, "qpn", c.qp.QPN, "remote_qpn", m.EP.QPN)
		return c, nil
	case <-timer.C:
		c.destroy()
		return nil, fmt.Errorf("%w: peer %d did not answer within %v", ErrSetup, peer, t.cfg.SetupTimeout)
	}
}

const rejectCollision = "collision"

func (t *Transport) sendCtrl(peer uint32, m *ctrlMsg) error {
	return overlay.SendCtrl(t.tcp, t.self, ctrlHandler, peer, m.encode())
}

// linkDown: the control connection died, so the peer did (or is
// unreachable): its RDMA connection goes too (the Tap then tells the
// node, once).
func (t *Transport) linkDown(peer uint32, err error) {
	t.mu.Lock()
	var c *conn
	if ps := t.peers[peer]; ps != nil {
		c = ps.LinkDown()
	}
	t.mu.Unlock()
	if c != nil {
		c.fail(err, false)
	}
}

func (t *Transport) onCtrl(from uint32, arg []byte) {
	m, err := decodeCtrl(arg)
	if err != nil {
		t.log.Warn("bad rdma control message", "peer", from, "err", err)
		return
	}
	switch m.Kind {
	case ctrlConnect:
		t.accept(from, m)
	case ctrlAccept, ctrlReject:
		t.mu.Lock()
		t.peers.Answer(from, m.Nonce, m)
		t.mu.Unlock()
	case ctrlReady:
		t.mu.Lock()
		var c *conn
		if ps := t.peers[from]; ps != nil && ps.Conn != nil && ps.Conn.nonce == m.Nonce {
			c = ps.Conn
		}
		t.mu.Unlock()
		if c != nil {
			c.setReady()
		}
	case ctrlRegions:
		t.mu.Lock()
		var c *conn
		if ps := t.peers[from]; ps != nil {
			c = ps.Conn
		}
		t.mu.Unlock()
		if c != nil {
			c.setRegions(m.EP.Regions)
		}
	}
}

// accept answers a peer's CONNECT as responder: our QP goes to RTS before
// ACCEPT leaves, and we send on it once READY says theirs is too.
func (t *Transport) accept(from uint32, m ctrlMsg) {
	t.mu.Lock()
	ps := t.peers.Get(from)
	collide := ps.Dialing != nil && overlay.LowerWins(t.self, from)
	closed := t.closed
	t.mu.Unlock()
	if closed {
		return
	}
	if collide {
		// Both sides dialed: the lower id's setup wins.
		t.sendCtrl(from, &ctrlMsg{Kind: ctrlReject, Nonce: m.Nonce, Reason: rejectCollision})
		return
	}
	hello, _ := overlay.Hello(t.tcp, from)
	c, err := t.newConn(from, hello)
	if err == nil {
		if err = c.connect(m.EP); err != nil {
			c.destroy()
		}
	}
	if err != nil {
		t.log.Warn("rdma accept failed", "peer", from, "err", err)
		t.sendCtrl(from, &ctrlMsg{Kind: ctrlReject, Nonce: m.Nonce, Reason: err.Error()})
		return
	}
	c.nonce = m.Nonce
	ps.Order.Lock()
	defer ps.Order.Unlock()
	t.mu.Lock()
	ok := t.installLocked(c)
	t.mu.Unlock()
	if !ok {
		c.destroy()
		return
	}
	if err := t.sendCtrl(from, &ctrlMsg{Kind: ctrlAccept, Nonce: m.Nonce, EP: c.localEndpoint()}); err != nil {
		c.fail(err, false)
	}
}

// Peers implements transport.Transport (the control connections).
func (t *Transport) Peers() []transport.PeerInfo { return t.tcp.Peers() }

// Stats implements transport.Transport: TCP and RDMA traffic together.
func (t *Transport) Stats() transport.Stats { return t.ctr.Add(t.tcp.Stats()) }

// ConnInfo describes one RDMA connection.
type ConnInfo struct {
	Peer          uint32
	QPN, PeerQPN  uint32
	Ready         bool
	Credits       int // SENDs the peer can take now
	MinCredits    int // lowest Credits seen (never below 0)
	Queued        int // frame bytes waiting for credits
	CreditMsgs    uint64
	FramesSent    uint64
	FramesRecv    uint64
	RemoteRegions []RemoteRegion
}

// Conns describes the live RDMA connections.
func (t *Transport) Conns() []ConnInfo {
	t.mu.Lock()
	cs := t.peers.Conns()
	t.mu.Unlock()
	out := make([]ConnInfo, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.info())
	}
	return out
}

// Close implements transport.Transport.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	cs := t.peers.TakeConns()
	t.mu.Unlock()
	err := t.tcp.Close()
	for _, c := range cs {
		c.fail(transport.ErrClosed, false)
	}
	t.conns.Wait() // connections being set up finish with ErrClosed
	for _, p := range t.pollers {
		p.stop.Store(true)
		p.wake()
	}
	t.wg.Wait()
	t.mu.Lock()
	for _, p := range t.pollers {
		p.cq.Close()
		if p.ch != nil {
			p.ch.Close()
		}
	}
	t.closeDevice()
	t.mu.Unlock()
	return err
}
