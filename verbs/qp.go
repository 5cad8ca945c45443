package verbs

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"github.com/bcship/bcship/internal/uverbs"
	"golang.org/x/sys/unix"
)

// QPState is a queue pair state (enum ib_qp_state).
type QPState uint8

const (
	QPReset QPState = 0
	QPInit  QPState = 1
	QPRTR   QPState = 2
	QPRTS   QPState = 3
	QPSQD   QPState = 4
	QPSQE   QPState = 5
	QPError QPState = 6
)

func (s QPState) String() string {
	names := [...]string{"RESET", "INIT", "RTR", "RTS", "SQD", "SQE", "ERR"}
	if int(s) < len(names) {
		return names[s]
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// QPCaps are a QP's queue sizes.
type QPCaps struct {
	MaxSendWR, MaxRecvWR   uint32
	MaxSendSGE, MaxRecvSGE uint32
	MaxInline              uint32
}

// QPConfig describes an RC queue pair to create.
type QPConfig struct {
	SendCQ, RecvCQ *CQ
	Caps           QPCaps
	// SignalAll makes every send complete on the CQ; otherwise only those
	// with SendSignaled do.
	SignalAll bool
}

// QP is a reliable-connected queue pair.
type QP struct {
	pd     *PD
	handle uint32
	QPN    uint32
	Caps   QPCaps // what the kernel granted
	rings  qpRings
	cfg    QPConfig

	state atomic.Uint32 // QPState
	mu    sync.Mutex    // serialises modify/close against each other
	// closed is read on every post without the lock.
	closed atomic.Bool
}

// CreateQP creates an RC queue pair in the RESET state.
func (pd *PD) CreateQP(cfg QPConfig) (*QP, error) {
	if pd.isClosed() {
		return nil, misuse("create_qp", unix.EBADF, ErrClosed)
	}
	if cfg.SendCQ == nil || cfg.RecvCQ == nil {
		return nil, misuse("create_qp", unix.EINVAL, fmt.Errorf("send and receive CQs are required"))
	}
	if cfg.Caps.MaxSendSGE == 0 {
		cfg.Caps.MaxSendSGE = 1
	}
	if cfg.Caps.MaxRecvSGE == 0 {
		cfg.Caps.MaxRecvSGE = 1
	}
	req := uverbs.CreateQP{
		PDHandle: pd.handle, SendCQHandle: cfg.SendCQ.handle, RecvCQHandle: cfg.RecvCQ.handle,
		MaxSendWR: cfg.Caps.MaxSendWR, MaxRecvWR: cfg.Caps.MaxRecvWR,
		MaxSendSGE: cfg.Caps.MaxSendSGE, MaxRecvSGE: cfg.Caps.MaxRecvSGE, MaxInlineData: cfg.Caps.MaxInline,
		QPType: uverbs.IB_UVERBS_QPT_RC,
	}
	if cfg.SignalAll {
		req.SQSigAll = 1
	}
	resp, rings, err := pd.ctx.prov.createQP(pd.ctx, &req)
	if err != nil {
		return nil, err
	}
	return &QP{pd: pd, handle: resp.QPHandle, QPN: resp.QPN, rings: rings, cfg: cfg, Caps: QPCaps{
		MaxSendWR: resp.MaxSendWR, MaxRecvWR: resp.MaxRecvWR, MaxSendSGE: resp.MaxSendSGE,
		MaxRecvSGE: resp.MaxRecvSGE, MaxInline: resp.MaxInlineData,
	}}, nil
}

// State is the state the QP was last moved to.
func (qp *QP) State() QPState { return QPState(qp.state.Load()) }

// Endpoint is what a peer needs to connect to a QP.
type Endpoint struct {
	QPN uint32
	PSN uint32 // first packet sequence number it sends
	GID net.IP // 16-byte RoCE v2 GID
}

// ConnectConfig describes the path to a peer.
type ConnectConfig struct {
	Port     uint8 // default 1
	GIDIndex uint8 // local RoCE v2 GID (see FindRoCEv2GID)
	MTU      MTU   // default: the port's active MTU
	LocalPSN uint32
	Remote   Endpoint
	Access   Access // remote rights on this QP; default AccessAll
	HopLimit uint8  // default 64
}

// Connect moves the QP through INIT, RTR and RTS towards remote.
func (qp *QP) Connect(cc ConnectConfig) error {
	if cc.Port == 0 {
		cc.Port = 1
	}
	if cc.Access == 0 {
		cc.Access = AccessAll
	}
	if cc.HopLimit == 0 {
		cc.HopLimit = 64
	}
	if cc.MTU == 0 {
		pa, err := qp.pd.ctx.QueryPort(cc.Port)
		if err != nil {
			return err
		}
		cc.MTU = pa.ActiveMTU
	}
	if err := qp.ToInit(cc.Port, cc.Access); err != nil {
		return err
	}
	if err := qp.ToRTR(cc); err != nil {
		return err
	}
	return qp.ToRTS(cc.LocalPSN)
}

// ToInit moves RESET → INIT.
func (qp *QP) ToInit(port uint8, access Access) error {
	m := uverbs.ModifyQP{
		AttrMask:      uverbs.IBV_QP_STATE | uverbs.IBV_QP_PKEY_INDEX | uverbs.IBV_QP_PORT | uverbs.IBV_QP_ACCESS_FLAGS,
		QPState:       uint8(QPInit),
		PortNum:       port,
		QPAccessFlags: uint32(access),
	}
	return qp.modify("modify_qp(INIT)", &m, QPInit)
}

// ToRTR moves INIT → RTR: the receive side of the connection, addressed by
// RoCE v2 GID (RoCE carries a GRH on every packet, so is_global is set;
// the core resolves the peer's MAC from the GID).
func (qp *QP) ToRTR(cc ConnectConfig) error {
	gid := cc.Remote.GID.To16()
	if gid == nil {
		return misuse("modify_qp(RTR)", unix.EINVAL, ErrNoGID)
	}
	m := uverbs.ModifyQP{
		AttrMask: uverbs.IBV_QP_STATE | uverbs.IBV_QP_AV | uverbs.IBV_QP_PATH_MTU | uverbs.IBV_QP_DEST_QPN |
			uverbs.IBV_QP_RQ_PSN | uverbs.IBV_QP_MAX_DEST_RD_ATOMIC | uverbs.IBV_QP_MIN_RNR_TIMER,
		QPState:         uint8(QPRTR),
		PathMTU:         uint8(cc.MTU),
		DestQPNum:       cc.Remote.QPN,
		RQPSN:           cc.Remote.PSN & 0xffffff,
		MaxDestRdAtomic: 16,
		MinRNRTimer:     12, // 0.64 ms
	}
	copy(m.Dest.DGID[:], gid)
	m.Dest.SGIDIndex = cc.GIDIndex
	m.Dest.HopLimit = cc.HopLimit
	m.Dest.IsGlobal = 1
	m.Dest.PortNum = cc.Port
	return qp.modify("modify_qp(RTR)", &m, QPRTR)
}

// ToRTS moves RTR → RTS with the send-side timers.
func (qp *QP) ToRTS(psn uint32) error {
	m := uverbs.ModifyQP{
		AttrMask: uverbs.IBV_QP_STATE | uverbs.IBV_QP_TIMEOUT | uverbs.IBV_QP_RETRY_CNT |
			uverbs.IBV_QP_RNR_RETRY | uverbs.IBV_QP_SQ_PSN | uverbs.IBV_QP_MAX_QP_RD_ATOMIC,
		QPState:     uint8(QPRTS),
		Timeout:     14, // 4.096 µs << 14 ≈ 67 ms
		RetryCnt:    7,
		RNRRetry:    7, // infinite
		SQPSN:       psn & 0xffffff,
		MaxRdAtomic: 16,
	}
	return qp.modify("modify_qp(RTS)", &m, QPRTS)
}

// ToError moves the QP to ERR; outstanding work requests complete as
// flushed.
func (qp *QP) ToError() error {
	m := uverbs.ModifyQP{AttrMask: uverbs.IBV_QP_STATE, QPState: uint8(QPError)}
	return qp.modify("modify_qp(ERR)", &m, QPError)
}

func (qp *QP) modify(op string, m *uverbs.ModifyQP, to QPState) error {
	qp.mu.Lock()
	defer qp.mu.Unlock()
	if qp.closed.Load() || qp.pd.ctx.isClosed() {
		return misuse(op, unix.EBADF, ErrClosed)
	}
	m.QPHandle = qp.handle
	if err := uverbs.CallNoResp(qp.pd.ctx.fd, uverbs.IB_USER_VERBS_CMD_MODIFY_QP, m); err != nil {
		if err == unix.EINVAL {
			return &Error{Op: op, Errno: unix.EINVAL, Err: fmt.Errorf("%w: %v → %v refused", ErrQPState, qp.State(), to)}
		}
		return opErr(op, err)
	}
	qp.state.Store(uint32(to))
	return nil
}

// Opcode is a send work request opcode.
type Opcode uint32

const (
	OpRDMAWrite      Opcode = uverbs.IB_UVERBS_WR_RDMA_WRITE
	OpRDMAWriteImm   Opcode = uverbs.IB_UVERBS_WR_RDMA_WRITE_WITH_IMM
	OpSend           Opcode = uverbs.IB_UVERBS_WR_SEND
	OpSendImm        Opcode = uverbs.IB_UVERBS_WR_SEND_WITH_IMM
	OpRDMARead       Opcode = uverbs.IB_UVERBS_WR_RDMA_READ
	OpAtomicCmpSwap  Opcode = uverbs.IB_UVERBS_WR_ATOMIC_CMP_AND_SWP
	OpAtomicFetchAdd Opcode = uverbs.IB_UVERBS_WR_ATOMIC_FETCH_AND_ADD
)

// SendFlags modify a send work request.
type SendFlags uint32

const (
	SendFence     SendFlags = uverbs.IBV_SEND_FENCE
	SendSignaled  SendFlags = uverbs.IBV_SEND_SIGNALED
	SendSolicited SendFlags = uverbs.IBV_SEND_SOLICITED
	sendInline    SendFlags = uverbs.IBV_SEND_INLINE
)

// SendWR is a send-queue work request.
type SendWR struct {
	ID     uint64
	Op     Opcode
	Flags  SendFlags
	SGEs   []SGE
	Inline []byte // copied into the WQE instead of SGEs; at most Caps.MaxInline bytes
	Imm    uint32 // for the *Imm opcodes, host order

	RemoteAddr uint64 // RDMA and atomics
	RKey       uint32
	CompareAdd uint64 // atomics: the compare value, or the addend
	Swap       uint64
}

// RecvWR is a receive-queue work request.
type RecvWR struct {
	ID   uint64
	SGEs []SGE
}

// PostSend queues send work requests and rings the doorbell once. Either
// all are queued or, on error, none.
func (qp *QP) PostSend(wrs []SendWR) error {
	if qp.closed.Load() {
		return misuse("post_send", unix.EBADF, ErrClosed)
	}
	if st := qp.State(); st != QPRTS {
		return &Error{Op: "post_send", Errno: unix.EINVAL, Err: fmt.Errorf("%w: %v, want RTS", ErrQPState, st)}
	}
	for i := range wrs {
		wr := &wrs[i]
		if len(wr.Inline) > 0 {
			if uint32(len(wr.Inline)) > qp.Caps.MaxInline {
				return misuse("post_send", unix.EINVAL, ErrInlineTooBig)
			}
		} else if uint32(len(wr.SGEs)) > qp.Caps.MaxSendSGE {
			return misuse("post_send", unix.EINVAL, ErrTooManySGEs)
		}
		switch wr.Op {
		case OpRDMAWrite, OpRDMAWriteImm, OpSend, OpSendImm, OpRDMARead:
		case OpAtomicCmpSwap, OpAtomicFetchAdd:
			if len(wr.SGEs) != 1 || wr.SGEs[0].Length != 8 || wr.RemoteAddr%8 != 0 {
				return misuse("post_send", unix.EINVAL, fmt.Errorf("atomics take one 8-byte SGE and an 8-byte aligned remote address"))
			}
		default:
			return misuse("post_send", unix.EINVAL, fmt.Errorf("opcode %d not supported", wr.Op))
		}
	}
	return qp.rings.postSend(wrs)
}

// PostRecv queues receive work requests (no system call on rxe). Either all
// are queued or, on error, none.
func (qp *QP) PostRecv(wrs []RecvWR) error {
	if qp.closed.Load() {
		return misuse("post_recv", unix.EBADF, ErrClosed)
	}
	if st := qp.State(); st == QPReset || st == QPError {
		return &Error{Op: "post_recv", Errno: unix.EINVAL, Err: fmt.Errorf("%w: %v", ErrQPState, st)}
	}
	for i := range wrs {
		if uint32(len(wrs[i].SGEs)) > qp.Caps.MaxRecvSGE {
			return misuse("post_recv", unix.EINVAL, ErrTooManySGEs)
		}
	}
	return qp.rings.postRecv(wrs)
}

// Close runs DESTROY_QP and unmaps the rings.
func (qp *QP) Close() error {
	qp.mu.Lock()
	defer qp.mu.Unlock()
	if qp.closed.Load() {
		return nil
	}
	if !qp.pd.ctx.isClosed() {
		var r uverbs.DestroyQPResp
		req := uverbs.DestroyQP{Response: uverbs.Ptr(&r), QPHandle: qp.handle}
		if err := uverbs.Call(qp.pd.ctx.fd, uverbs.IB_USER_VERBS_CMD_DESTROY_QP, &req, &r); err != nil {
			return opErr("destroy_qp", err)
		}
	}
	qp.closed.Store(true)
	// Posting goroutines check closed before touching the rings; the ring
	// locks make the unmap wait for any post already inside.
	return opErr("destroy_qp (unmap)", qp.rings.close())
}
