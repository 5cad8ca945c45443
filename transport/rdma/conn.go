package rdma

import (
	"fmt"
	"sync"

	"github.com/bcship/bcship/transport"
	"github.com/bcship/bcship/transport/internal/framebuf"
	"github.com/bcship/bcship/transport/internal/overlay"
	"github.com/bcship/bcship/verbs"
	"github.com/bcship/bcship/wire"
)

// Immediate data of every SEND: the credits it returns, and flags.
const (
	immCredits    = 0xffff
	immMore       = 1 << 16 // the frame continues in the next SEND
	immCreditOnly = 1 << 17 // no payload: only credits
)

// conn is the RC connection to one peer. Its completions arrive on a CQ
// shared with other connections (poller.go); when it fails, it destroys
// its verbs objects and memory once no one touches them.
type conn struct {
	t        *Transport
	p        *poller
	id       uint32 // in its work request ids
	cqNeed   int    // CQ entries reserved
	peer     uint32
	nonce    uint64 // setup attempt it answered (responder side)
	maxFrame uint32 // the peer's limit
	psn      uint32

	qp  *verbs.QP
	mem []byte // receive ring | send slots | scratch, one MR
	mr  *verbs.MR

	slotSize    int // ours (receive and send)
	maxInline   int // chunks up to this size are sent inline
	chunk       int // bytes per SEND: min(ours, the peer's slot size)
	peerQPN     uint32
	recvSGE     [][1]verbs.SGE
	sendSGE     [][1]verbs.SGE
	scratch     chan int // free scratch slots
	deadCh      chan struct{}
	destroyOnce sync.Once
	users       sync.WaitGroup // one-sided callers touching scratch memory
	// life keeps destroy from freeing the memory and QP while the poller
	// handles completions (read side); freed is set under the write side.
	life  sync.RWMutex
	freed bool

	mu             sync.Mutex
	ready          bool // the peer's QP is RTS: we may send
	dead           bool
	deadErr        error
	credits        int // receive slots the peer has posted for us
	minCredits     int
	toReturn       int // our reposted slots not yet announced
	threshold      int // toReturn that warrants a credit-only SEND
	creditInflight int
	freeSend       []int
	sending        int      // SENDs of frames posted and not completed (≤ SendSlots)
	queue          [][]byte // encoded frames, oldest first
	queueOff       int      // bytes of queue[0] already sent
	queued         int      // bytes in queue
	wrs            []verbs.SendWR
	ops            map[uint64]*op
	opSeq          uint64
	regions        map[string]RemoteRegion
	creditMsgs     uint64
	framesSent     uint64
	framesRecv     uint64

	// poller only
	reposts []verbs.RecvWR
	// arena holds the single-chunk frames of the batch being handled,
	// reused by the next; rx is the batch's frame list; dec decodes them.
	arena      framebuf.Arena
	rx         [][]byte
	dec        wire.Decoder
	asm        []byte // frame being reassembled from chunks
	discarding bool   // skipping the chunks of an oversize frame
	discardHdr wire.Header
}

type op struct {
	done      chan error
	slot      int
	abandoned bool // the caller left (context); the poller frees the slot
}

// newConn creates the QP (in INIT, every receive slot posted), its CQ and
// registered memory.
func (t *Transport) newConn(peer uint32, hello wire.Hello) (c *conn, err error) {
	cfg := &t.cfg
	c = &conn{t: t, peer: peer, maxFrame: hello.MaxFrame, slotSize: cfg.SlotSize, psn: uint32(overlay.Rand64()) & 0xffffff,
		deadCh: make(chan struct{}), ops: map[uint64]*op{}, regions: map[string]RemoteRegion{},
		scratch: make(chan int, cfg.ScratchSlots)}
	if c.maxFrame == 0 {
		c.maxFrame = wire.DefaultMaxFrameSize
	}
	defer func() {
		if err != nil {
			c.destroy()
			c = nil
		}
	}()
	sqDepth := cfg.SendSlots + cfg.ScratchSlots + creditSlack
	// Room for every work request of both queues, and for the flush of
	// all of them when the QP fails.
	if err = t.attach(c, sqDepth+cfg.RecvSlots+16); err != nil {
		return nil, err
	}
	recvBytes := cfg.RecvSlots * cfg.SlotSize
	sendBytes := cfg.SendSlots * cfg.SlotSize
	if c.mem, err = verbs.AllocBuffer(recvBytes + sendBytes + cfg.ScratchSlots*cfg.ScratchSize); err != nil {
		return nil, err
	}
	if c.mr, err = t.pd.RegMR(c.mem, verbs.AccessLocalWrite); err != nil {
		return nil, err
	}
	caps := verbs.QPCaps{MaxSendWR: uint32(sqDepth), MaxRecvWR: uint32(cfg.RecvSlots), MaxSendSGE: 1, MaxRecvSGE: 1,
		MaxInline: uint32(max(cfg.MaxInline, 0))}
	// Every send is signaled: completions free send slots and scratch.
	if c.qp, err = t.pd.CreateQP(verbs.QPConfig{SendCQ: c.p.cq, RecvCQ: c.p.cq, Caps: caps, SignalAll: true}); err != nil {
		return nil, err
	}
	c.maxInline = min(cfg.MaxInline, int(c.qp.Caps.MaxInline))
	if err = c.qp.ToInit(cfg.Port, verbs.AccessAll); err != nil {
		return nil, err
	}
	c.recvSGE = make([][1]verbs.SGE, cfg.RecvSlots)
	wrs := make([]verbs.RecvWR, cfg.RecvSlots)
	for i := range wrs {
		c.recvSGE[i][0], _ = c.mr.SGE(i*cfg.SlotSize, cfg.SlotSize)
		wrs[i] = verbs.RecvWR{ID: wrID(kindRecv, c.id, uint64(i)), SGEs: c.recvSGE[i][:]}
	}
	// Receives go in before the peer learns our QPN: no RNR, ever.
	if err = c.qp.PostRecv(wrs); err != nil {
		return nil, err
	}
	c.sendSGE = make([][1]verbs.SGE, cfg.SendSlots)
	for i := range cfg.SendSlots {
		c.sendSGE[i][0], _ = c.mr.SGE(recvBytes+i*cfg.SlotSize, cfg.SlotSize)
		c.freeSend = append(c.freeSend, i)
	}
	for i := range cfg.ScratchSlots {
		c.scratch <- i
	}
	c.threshold = max(1, min(cfg.RecvSlots/4, cfg.RecvSlots-2))
	return c, nil
}

func (c *conn) recvBuf(i int) []byte {
	s := c.slotSize
	return c.mem[i*s : (i+1)*s]
}

func (c *conn) sendBuf(i int) []byte {
	off := c.t.cfg.RecvSlots*c.slotSize + i*c.slotSize
	return c.mem[off : off+c.slotSize]
}

func (c *conn) scratchOff(i int) int {
	cfg := &c.t.cfg
	return (cfg.RecvSlots+cfg.SendSlots)*cfg.SlotSize + i*cfg.ScratchSize
}

func (c *conn) localEndpoint() endpoint {
	return endpoint{GID: c.t.gid.GID, QPN: c.qp.QPN, PSN: c.psn, Slots: uint32(c.t.cfg.RecvSlots),
		SlotSize: uint32(c.slotSize), Regions: c.t.regionTable()}
}

// connect brings the QP to RTS against the peer's endpoint.
func (c *conn) connect(ep endpoint) error {
	if len(ep.GID) != 16 {
		return fmt.Errorf("%w: peer GID %v", ErrSetup, ep.GID)
	}
	cc := verbs.ConnectConfig{Port: c.t.cfg.Port, GIDIndex: uint8(c.t.gid.Index), MTU: c.t.mtu, LocalPSN: c.psn,
		Remote: verbs.Endpoint{QPN: ep.QPN, PSN: ep.PSN, GID: ep.GID}, Access: verbs.AccessAll, HopLimit: 64}
	if err := c.qp.ToRTR(cc); err != nil {
		return err
	}
	if err := c.qp.ToRTS(c.psn); err != nil {
		return err
	}
	c.peerQPN = ep.QPN
	c.chunk = min(c.slotSize, int(ep.SlotSize))
	c.credits = int(ep.Slots)
	c.minCredits = c.credits
	c.setRegions(ep.Regions)
	return nil
}

func (c *conn) setRegions(rs []RemoteRegion) {
	m := make(map[string]RemoteRegion, len(rs))
	for _, r := range rs {
		m[r.Name] = r
	}
	c.mu.Lock()
	c.regions = m
	c.mu.Unlock()
}

func (c *conn) setReady() {
	c.mu.Lock()
	c.ready = true
	c.pumpLocked()
	c.mu.Unlock()
}

func (c *conn) isDead() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dead
}

func (c *conn) downErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return &transport.PeerDownError{Peer: c.peer, Err: c.deadErr}
}

// enqueue queues an encoded frame and sends what credits allow.
func (c *conn) enqueue(buf []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead {
		return &transport.PeerDownError{Peer: c.peer, Err: c.deadErr}
	}
	if len(c.queue) > 0 && c.queued+len(buf) > c.t.cfg.MaxQueued {
		return fmt.Errorf("rdma: peer %d: %w (%d bytes waiting for credits)", c.peer, ErrQueueFull, c.queued)
	}
	c.queue = append(c.queue, buf)
	c.queued += len(buf)
	c.pumpLocked()
	return nil
}

// pumpLocked posts queued chunks while credits and send slots last, with
// the credits owed to the peer piggybacked, and a credit-only SEND when
// many are owed and nothing carried them. One credit stays reserved for
// credit-only SENDs, so two sides out of data credits still unblock each
// other.
func (c *conn) pumpLocked() {
	if c.dead || !c.ready {
		return
	}
	wrs := c.wrs[:0]
	for len(c.queue) > 0 && c.credits >= 2 && c.sending < c.t.cfg.SendSlots {
		f := c.queue[0]
		n := min(len(f)-c.queueOff, c.chunk)
		wr := verbs.SendWR{Op: verbs.OpSendImm, Flags: verbs.SendSignaled}
		if n <= c.maxInline {
			// Copied into the work request by PostSend below: no send
			// slot, and the kernel does not read registered memory.
			wr.ID, wr.Inline = wrID(kindInline, c.id, 0), f[c.queueOff:c.queueOff+n]
		} else {
			if len(c.freeSend) == 0 {
				break
			}
			s := c.freeSend[len(c.freeSend)-1]
			c.freeSend = c.freeSend[:len(c.freeSend)-1]
			copy(c.sendBuf(s), f[c.queueOff:c.queueOff+n])
			c.sendSGE[s][0].Length = uint32(n)
			wr.ID, wr.SGEs = wrID(kindSend, c.id, uint64(s)), c.sendSGE[s][:]
		}
		c.queueOff += n
		more := c.queueOff < len(f)
		ret := min(c.toReturn, immCredits)
		c.toReturn -= ret
		wr.Imm = uint32(ret)
		if more {
			wr.Imm |= immMore
		}
		wrs = append(wrs, wr)
		c.sending++
		c.credits--
		if !more {
			c.queue[0] = nil
			c.queue = c.queue[1:]
			c.queued -= len(f)
			c.queueOff = 0
			c.framesSent++
			c.t.ctr.Sent(1, len(f))
		}
	}
	if c.toReturn >= c.threshold && c.credits >= 1 && c.creditInflight < creditSlack {
		ret := min(c.toReturn, immCredits)
		c.toReturn -= ret
		wrs = append(wrs, verbs.SendWR{ID: wrID(kindCredit, c.id, 0), Op: verbs.OpSendImm, Flags: verbs.SendSignaled,
			Imm: uint32(ret) | immCreditOnly})
		c.credits--
		c.creditInflight++
		c.creditMsgs++
	}
	c.minCredits = min(c.minCredits, c.credits)
	if len(c.queue) == 0 {
		c.queue = nil // let a long queue's backing array go
	}
	c.wrs = wrs[:0]
	if len(wrs) == 0 {
		return
	}
	if err := c.qp.PostSend(wrs); err != nil {
		c.failLocked(err)
		go c.notify(err)
	}
}

// handle processes one batch of completions: receive slots are copied
// out and reposted, and their credits announced, before the node sees the
// frames, so a slow handler never starves the peer of credits.
func (c *conn) handle(wcs []verbs.WC) {
	frames, ok := c.collect(wcs)
	if !ok {
		return
	}
	for _, f := range frames {
		c.deliver(f)
	}
	clear(frames)
	c.rx = frames[:0]
}

// collect does handle's work on the connection's memory and queues, which
// destroy must not free meanwhile; it reports false when the connection
// is gone or just failed.
func (c *conn) collect(wcs []verbs.WC) (frames [][]byte, ok bool) {
	c.life.RLock()
	defer c.life.RUnlock()
	if c.freed {
		return nil, false
	}
	frames = c.rx[:0] // the last batch is handled
	c.arena.Reset()
	c.reposts = c.reposts[:0]
	var freed []int
	gained, creditDone, inlined := 0, 0, 0
	for i := range wcs {
		wc := &wcs[i]
		kind, _, n := splitID(wc.ID)
		if wc.Status != verbs.WCSuccess {
			if c.isDead() {
				continue // flushed after we failed
			}
			err := fmt.Errorf("%s completion: %w", kindName(kind), wc.Err())
			c.fail(err, true)
			return nil, false
		}
		switch kind {
		case kindRecv:
			gained += int(wc.Imm & immCredits)
			if wc.Imm&immCreditOnly == 0 {
				var err error
				if frames, err = c.assemble(frames, c.recvBuf(int(n))[:wc.ByteLen], wc.Imm&immMore != 0); err != nil {
					c.fail(err, true)
					return nil, false
				}
			}
			c.reposts = append(c.reposts, verbs.RecvWR{ID: wc.ID, SGEs: c.recvSGE[n][:]})
		case kindSend:
			freed = append(freed, int(n))
		case kindInline:
			inlined++
		case kindCredit:
			creditDone++
		case kindOp:
			c.completeOp(wc.ID, nil)
		}
	}
	if len(c.reposts) > 0 {
		if err := c.qp.PostRecv(c.reposts); err != nil {
			c.fail(err, true)
			return nil, false
		}
	}
	c.mu.Lock()
	c.credits += gained
	c.toReturn += len(c.reposts)
	c.creditInflight -= creditDone
	c.freeSend = append(c.freeSend, freed...)
	c.sending -= len(freed) + inlined
	c.pumpLocked()
	c.mu.Unlock()
	return frames, true
}

func kindName(k int) string {
	switch k {
	case kindRecv:
		return "receive"
	case kindSend, kindInline:
		return "send"
	case kindCredit:
		return "credit"
	case kindOp:
		return "one-sided"
	}
	return "unknown"
}

// assemble collects a frame's chunks; frames arrive in order on RC. A
// frame over our limit is skipped chunk by chunk and answered.
func (c *conn) assemble(frames [][]byte, chunk []byte, more bool) ([][]byte, error) {
	if c.discarding {
		if !more {
			c.discarding = false
			c.answer(c.discardHdr.RequestID, wire.CodeTooLarge, fmt.Sprintf("rdma: frame of %d bytes over the limit of %d",
				c.discardHdr.Length, c.t.cfg.TCP.MaxFrame))
		}
		return frames, nil
	}
	if c.asm == nil {
		if !more {
			return append(frames, c.keep(chunk)), nil
		}
		h, err := wire.ParseHeader(chunk)
		if err != nil {
			return frames, fmt.Errorf("rdma: stream lost its framing: %w", err)
		}
		if h.Length > c.t.cfg.TCP.MaxFrame {
			c.discarding, c.discardHdr = true, h
			return frames, nil
		}
		c.asm = make([]byte, 0, wire.HeaderSize+int(h.Length))
	}
	if len(c.asm)+len(chunk) > cap(c.asm) {
		return frames, fmt.Errorf("rdma: chunks overrun their frame (%d bytes)", cap(c.asm))
	}
	c.asm = append(c.asm, chunk...)
	if !more {
		frames = append(frames, c.asm)
		c.asm = nil
	}
	return frames, nil
}

// keep copies a single-chunk frame out of its receive slot, which is
// reposted before the frame is delivered.
func (c *conn) keep(chunk []byte) []byte {
	f := c.arena.Take(len(chunk))
	copy(f, chunk)
	return f
}

// deliver decodes one frame into the connection's messages and hands it
// to the node.
func (c *conn) deliver(f []byte) {
	t := c.t
	h, err := wire.ParseHeader(f)
	if err != nil || wire.HeaderSize+int(h.Length) != len(f) {
		c.answer(h.RequestID, wire.CodeBadFrame, fmt.Sprintf("rdma: frame of %d bytes does not match its header (%v)", len(f), err))
		return
	}
	if h.Length > t.cfg.TCP.MaxFrame {
		c.answer(h.RequestID, wire.CodeTooLarge, fmt.Sprintf("rdma: frame of %d bytes over the limit of %d", h.Length, t.cfg.TCP.MaxFrame))
		return
	}
	t.ctr.Received(len(f))
	c.mu.Lock()
	c.framesRecv++
	c.mu.Unlock()
	overlay.Deliver(t.h, &c.dec, c.peer, h, f, c.answer)
}

func (c *conn) answer(req uint64, code wire.ErrorCode, text string) {
	c.t.ctr.Bad()
	b, err := wire.AppendFrame(nil, wire.Header{RequestID: req, Source: c.t.self}, wire.NewError(code, req, text))
	if err == nil {
		c.enqueue(b)
	}
}

// fail marks the connection dead once: queued frames are dropped, pending
// one-sided operations get ErrPeerDown, the QP goes to ERROR (flushing its
// work requests) and the poller stops and destroys everything. With notify
// the node hears PeerDown.
func (c *conn) fail(err error, notify bool) {
	c.mu.Lock()
	first := c.failLocked(err)
	c.mu.Unlock()
	if first && notify {
		c.notify(err)
	}
}

func (c *conn) failLocked(err error) bool {
	if c.dead {
		return false
	}
	c.dead, c.deadErr = true, err
	c.queue, c.queued, c.queueOff = nil, 0, 0
	down := &transport.PeerDownError{Peer: c.peer, Err: err}
	for id, o := range c.ops {
		delete(c.ops, id)
		if !o.abandoned {
			o.done <- down
		}
	}
	close(c.deadCh)
	if c.qp != nil && c.qp.State() != verbs.QPReset {
		c.qp.ToError()
	}
	go c.destroy() // not here: the caller may be handling completions
	return true
}

// notify detaches the connection from its peer (the next Send sets up a
// new one) and tells the node the peer is down.
func (c *conn) notify(err error) {
	t := c.t
	t.mu.Lock()
	cur := t.peers.Detach(c.peer, c)
	closed := t.closed
	t.mu.Unlock()
	if cur && !closed {
		t.log.Info("rdma peer down", "peer", c.peer, "err", err)
		t.h.PeerDown(c.peer, &transport.PeerDownError{Peer: c.peer, Err: err})
	}
}

// destroy releases the verbs objects and memory once neither the poller
// nor a one-sided caller touches them any more.
func (c *conn) destroy() {
	c.destroyOnce.Do(func() {
		c.mu.Lock()
		if !c.dead {
			c.failLocked(transport.ErrClosed)
		}
		c.mu.Unlock()
		if c.p == nil { // attach failed: nothing else was made
			return
		}
		c.p.detach(c)
		c.life.Lock()
		c.freed = true
		c.life.Unlock()
		c.users.Wait()
		if c.qp != nil {
			c.qp.Close()
		}
		if c.mr != nil {
			c.mr.Close()
		}
		if c.mem != nil {
			verbs.FreeBuffer(c.mem)
		}
		c.t.conns.Done()
	})
}

func (c *conn) info() ConnInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	ci := ConnInfo{Peer: c.peer, QPN: c.qp.QPN, PeerQPN: c.peerQPN, Ready: c.ready && !c.dead, Credits: c.credits,
		MinCredits: c.minCredits, Queued: c.queued, CreditMsgs: c.creditMsgs, FramesSent: c.framesSent, FramesRecv: c.framesRecv}
	for _, r := range c.regions {
		ci.RemoteRegions = append(ci.RemoteRegions, r)
	}
	return ci
}
