package verbs

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/bcship/bcship/internal/uverbs"
	"golang.org/x/sys/unix"
)

// WCStatus is a work completion status (enum ibv_wc_status).
type WCStatus uint32

const (
	WCSuccess        WCStatus = 0
	WCLocLenErr      WCStatus = 1
	WCLocQPOpErr     WCStatus = 2
	WCLocProtErr     WCStatus = 4
	WCWRFlushErr     WCStatus = 5
	WCRemInvReqErr   WCStatus = 9
	WCRemAccessErr   WCStatus = 10
	WCRemOpErr       WCStatus = 11
	WCRetryExcErr    WCStatus = 12
	WCRNRRetryExcErr WCStatus = 13
	WCGeneralErr     WCStatus = 21
)

var wcStatusNames = map[WCStatus]string{
	WCSuccess: "success", WCLocLenErr: "local length error", WCLocQPOpErr: "local QP operation error",
	WCLocProtErr: "local protection error", WCWRFlushErr: "flushed", WCRemInvReqErr: "remote invalid request",
	WCRemAccessErr: "remote access error", WCRemOpErr: "remote operation error",
	WCRetryExcErr: "transport retry exceeded", WCRNRRetryExcErr: "RNR retry exceeded", WCGeneralErr: "general error",
}

func (s WCStatus) String() string {
	if n, ok := wcStatusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("status(%d)", uint32(s))
}

// WCOpcode says what completed (enum ibv_wc_opcode).
type WCOpcode uint32

const (
	WCSend            WCOpcode = uverbs.IBV_WC_SEND
	WCRDMAWrite       WCOpcode = uverbs.IBV_WC_RDMA_WRITE
	WCRDMARead        WCOpcode = uverbs.IBV_WC_RDMA_READ
	WCCompSwap        WCOpcode = uverbs.IBV_WC_COMP_SWAP
	WCFetchAdd        WCOpcode = uverbs.IBV_WC_FETCH_ADD
	WCRecv            WCOpcode = uverbs.IBV_WC_RECV
	WCRecvRDMAWithImm WCOpcode = uverbs.IBV_WC_RECV_RDMA_WITH_IMM
)

// WC is a work completion.
type WC struct {
	ID        uint64
	Status    WCStatus
	Opcode    WCOpcode // valid for successful completions
	ByteLen   uint32
	Imm       uint32 // host order
	QPN       uint32
	SrcQP     uint32
	Flags     uint32
	VendorErr uint32
}

// Err is nil for a successful completion, else an *Error naming the status.
func (wc *WC) Err() error {
	if wc.Status == WCSuccess {
		return nil
	}
	return &Error{Op: "completion", Errno: unix.EIO, Err: fmt.Errorf("wr %d: %v (vendor %#x)", wc.ID, wc.Status, wc.VendorErr)}
}

// CQ is a completion queue.
type CQ struct {
	ctx    *Context
	handle uint32
	depth  int
	ring   cqRing

	// Set for a CQ bound to a completion channel: userHandle names the CQ
	// in the channel's events, notify is its prebuilt REQ_NOTIFY_CQ.
	ch         *CompChannel
	userHandle uint64
	notify     *uverbs.Notify
	// events counts the events Wait returned for the CQ; reported is the
	// kernel's count (DESTROY_CQ's comp_events_reported). Tests compare them.
	events   atomic.Uint32
	reported uint32

	mu     sync.Mutex
	closed bool
}

// CreateCQ creates a completion queue of at least depth entries. Size it
// for every work request that can complete on it: an overflowing CQ
// moves its QPs to the error state.
func (c *Context) CreateCQ(depth int) (*CQ, error) {
	return c.CreateCQWithChannel(depth, nil)
}

// CreateCQWithChannel is CreateCQ for a CQ whose completions can be waited
// for on ch (see ReqNotify and CompChannel.Wait); a nil ch makes it CreateCQ.
// The channel must come from the same Context. Completion vector 0.
func (c *Context) CreateCQWithChannel(depth int, ch *CompChannel) (*CQ, error) {
	if c.isClosed() {
		return nil, misuse("create_cq", unix.EBADF, ErrClosed)
	}
	if depth <= 0 {
		return nil, misuse("create_cq", unix.EINVAL, ErrOutOfBounds)
	}
	req := uverbs.CreateCQ{CQE: uint32(depth), CompChannel: -1}
	if ch == nil {
		resp, ring, err := c.prov.createCQ(c, &req)
		if err != nil {
			return nil, err
		}
		return &CQ{ctx: c, handle: resp.CQHandle, depth: int(resp.CQE), ring: ring}, nil
	}
	if ch.ctx != c {
		return nil, misuse("create_cq", unix.EINVAL, errors.New("completion channel of another device context"))
	}
	if err := ch.acquire(); err != nil {
		return nil, err
	}
	// Events carry the user_handle, not the kernel's CQ handle (which
	// exists only after the command): a per-Context serial names the CQ.
	req.UserHandle = c.userHandles.Add(1)
	var resp uverbs.CreateCQResp
	var ring cqRing
	var err error
	// Control keeps the channel's descriptor open during the command.
	if cerr := ch.rc.Control(func(fd uintptr) {
		req.CompChannel = int32(fd)
		resp, ring, err = c.prov.createCQ(c, &req)
	}); cerr != nil {
		err = misuse("create_cq", unix.EBADF, ErrClosed)
	}
	if err != nil {
		ch.release(nil)
		return nil, err
	}
	cq := &CQ{ctx: c, handle: resp.CQHandle, depth: int(resp.CQE), ring: ring,
		ch: ch, userHandle: req.UserHandle, notify: c.fd.NewNotify(resp.CQHandle)}
	ch.bind(cq)
	return cq, nil
}

// Depth is the number of entries the kernel gave the CQ.
func (cq *CQ) Depth() int { return cq.depth }

// Poll moves up to len(wcs) completions into wcs and returns how many. It
// never blocks.
func (cq *CQ) Poll(wcs []WC) (int, error) {
	cq.mu.Lock()
	closed := cq.closed
	cq.mu.Unlock()
	if closed {
		return 0, misuse("poll_cq", unix.EBADF, ErrClosed)
	}
	return cq.ring.poll(wcs), nil
}

// ReqNotify arms the CQ (ibv_req_notify_cq): its next completion queues
// one event on its completion channel, for CompChannel.Wait. With
// solicitedOnly only the receive of a message sent with SendSolicited does
// (on rxe also a failed receive; send completions never do). An arm fires
// once: arm again after each event.
// Completions already in the CQ raise no event, so a poller that found the
// CQ empty arms it, polls once more, and blocks only if that finds nothing.
// The CQ must have been created with a channel (else ErrNoChannel).
func (cq *CQ) ReqNotify(solicitedOnly bool) error {
	if cq.notify == nil {
		return misuse("req_notify_cq", unix.EINVAL, ErrNoChannel)
	}
	// Held across the command: after Close the kernel may give the handle
	// to a new CQ, which a late arm would then arm.
	cq.mu.Lock()
	defer cq.mu.Unlock()
	if cq.closed || cq.ctx.isClosed() {
		return misuse("req_notify_cq", unix.EBADF, ErrClosed)
	}
	return opErr("req_notify_cq", cq.notify.Arm(solicitedOnly))
}

// Close runs DESTROY_CQ (EBUSY while a QP still uses the CQ) and unmaps
// the ring. The kernel drops the CQ's events that no Wait has read yet.
func (cq *CQ) Close() error {
	cq.mu.Lock()
	defer cq.mu.Unlock()
	if cq.closed {
		return nil
	}
	if !cq.ctx.isClosed() {
		var r uverbs.DestroyCQResp
		req := uverbs.DestroyCQ{Response: uverbs.Ptr(&r), CQHandle: cq.handle}
		if err := uverbs.Call(cq.ctx.fd, uverbs.IB_USER_VERBS_CMD_DESTROY_CQ, &req, &r); err != nil {
			return opErr("destroy_cq", err)
		}
		cq.reported = r.CompEventsReported
	}
	cq.closed = true
	if cq.ch != nil {
		cq.ch.release(cq)
	}
	return opErr("destroy_cq (unmap)", cq.ring.close())
}
