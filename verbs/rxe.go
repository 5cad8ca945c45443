package verbs

import (
	"encoding/binary"
	"math/bits"
	"structs"
	"sync"

	"github.com/bcship/bcship/internal/uverbs"
	"golang.org/x/sys/unix"
)

// rxeProvider is soft-RoCE: the kernel maps its SQ/RQ/CQ rings into the
// process (rdma/rdma_user_rxe.h); receives and polls need no system call,
// sends need a doorbell (POST_SEND with zero work requests) to run the
// requester.
type rxeProvider struct{}

func (rxeProvider) driverID() uint32 { return uverbs.RDMA_DRIVER_RXE }

type rxeCQResp struct {
	_    structs.HostLayout
	Core uverbs.CreateCQResp
	Drv  uverbs.RxeCreateCQResp
}

type rxeQPResp struct {
	_    structs.HostLayout
	Core uverbs.CreateQPResp
	Drv  uverbs.RxeCreateQPResp
}

func (rxeProvider) createCQ(c *Context, req *uverbs.CreateCQ) (uverbs.CreateCQResp, cqRing, error) {
	r := new(rxeCQResp)
	if err := createNative(c, func() error { return uverbs.CreateCQNative(c.fd, req, &r.Core, &r.Drv) }, func() error {
		return uverbs.CallDriver(c.fd, uverbs.IB_USER_VERBS_CMD_CREATE_CQ, req, r, uverbs.SizeOf[uverbs.CreateCQResp]())
	}); err != nil {
		return r.Core, nil, opErr("create_cq", err)
	}
	q, err := c.fd.MapQueue(r.Drv.MI, uverbs.SizeOf[uverbs.WC]())
	if err != nil {
		var dr uverbs.DestroyCQResp
		d := uverbs.DestroyCQ{Response: uverbs.Ptr(&dr), CQHandle: r.Core.CQHandle}
		uverbs.Call(c.fd, uverbs.IB_USER_VERBS_CMD_DESTROY_CQ, &d, &dr)
		return r.Core, nil, opErr("create_cq (mmap)", err)
	}
	return r.Core, &rxeCQ{q: q}, nil
}

func (rxeProvider) createQP(c *Context, req *uverbs.CreateQP) (uverbs.CreateQPResp, qpRings, error) {
	r := new(rxeQPResp)
	// No driver input: newer rxe refuses CREATE_QP udata with EINVAL.
	if err := createNative(c, func() error { return uverbs.CreateQPNative(c.fd, req, &r.Core, &r.Drv) }, func() error {
		return uverbs.CallDriver(c.fd, uverbs.IB_USER_VERBS_CMD_CREATE_QP, req, r, uverbs.SizeOf[uverbs.CreateQPResp]())
	}); err != nil {
		return r.Core, nil, opErr("create_qp", err)
	}
	destroy := func() {
		var dr uverbs.DestroyQPResp
		d := uverbs.DestroyQP{Response: uverbs.Ptr(&dr), QPHandle: r.Core.QPHandle}
		uverbs.Call(c.fd, uverbs.IB_USER_VERBS_CMD_DESTROY_QP, &d, &dr)
	}
	sq, err := c.fd.MapQueue(r.Drv.SQMI, uverbs.SizeOf[uverbs.RxeSendWQE]())
	if err != nil {
		destroy()
		return r.Core, nil, opErr("create_qp (mmap sq)", err)
	}
	rq, err := c.fd.MapQueue(r.Drv.RQMI, uverbs.SizeOf[uverbs.RxeRecvWQE]()+uverbs.SizeOf[uverbs.RxeSGE]())
	if err != nil {
		sq.Unmap()
		destroy()
		return r.Core, nil, opErr("create_qp (mmap rq)", err)
	}
	rings := &rxeQP{fd: c.fd, sq: sq, rq: rq, db: c.fd.NewDoorbell(r.Core.QPHandle, c.ioctlDoorbell)}
	return r.Core, rings, nil
}

// createNative runs a create command through its native ioctl method, and
// through the write-command structs (INVOKE_WRITE, or write()) when the
// kernel has no such method or Options.NoNativeCreate asks for it.
func createNative(c *Context, native, legacy func() error) error {
	if !c.noNativeCreate {
		err := native()
		if err == nil || !c.fd.NoNative(err) {
			return err
		}
	}
	return legacy()
}

type rxeCQ struct {
	mu   sync.Mutex
	q    *uverbs.Queue
	dead bool
}

func (r *rxeCQ) poll(wcs []WC) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dead || len(wcs) == 0 {
		return 0
	}
	q := r.q
	cons := q.Consumer() // ours: only we write it
	prod := q.Producer() // acquire: CQEs before it are visible
	n := 0
	for n < len(wcs) && cons != prod {
		k := q.WC(cons)
		wcs[n] = WC{
			ID: k.WRID, Status: WCStatus(k.Status), Opcode: WCOpcode(k.Opcode), ByteLen: k.ByteLen,
			Imm: bits.ReverseBytes32(k.Imm), QPN: k.QPNum, SrcQP: k.SrcQP, Flags: k.WCFlags, VendorErr: k.VendorErr,
		}
		cons = (cons + 1) & q.Mask()
		n++
	}
	if n > 0 {
		// Release: the slots go back to the kernel only after we read them.
		q.SetConsumer(cons)
	}
	return n
}

func (r *rxeCQ) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dead = true
	return r.q.Unmap()
}

type rxeQP struct {
	fd     *uverbs.FD
	sqMu   sync.Mutex
	sq     *uverbs.Queue
	rqMu   sync.Mutex
	rq     *uverbs.Queue
	db     *uverbs.Doorbell
	sqDead bool
	rqDead bool
}

func free(q *uverbs.Queue) uint32 {
	// Kernel owns the consumer; one slot always stays empty.
	return (q.Consumer() - q.Producer() - 1) & q.Mask()
}

func (r *rxeQP) postSend(wrs []SendWR) error {
	r.sqMu.Lock()
	defer r.sqMu.Unlock()
	if r.sqDead {
		return misuse("post_send", unix.EBADF, ErrClosed)
	}
	q := r.sq
	if uint32(len(wrs)) > free(q) {
		return misuse("post_send", unix.ENOMEM, ErrQueueFull)
	}
	prod := q.Producer()
	for i := range wrs {
		if err := r.writeSend(prod, &wrs[i]); err != nil {
			return err
		}
		prod = (prod + 1) & q.Mask()
	}
	q.SetProducer(prod) // release: the WQEs are visible before the index
	// The doorbell makes rxe run the requester over the new WQEs in this
	// thread (rxe_post_send's user-QP path ignores WRs in the command).
	if err := r.db.Ring(); err != nil {
		return opErr("post_send (doorbell)", err)
	}
	return nil
}

// writeSend fills send slot i the way librxe's init_send_wqe does.
func (r *rxeQP) writeSend(i uint32, wr *SendWR) error {
	q := r.sq
	w := q.SendWQE(i)
	*w = uverbs.RxeSendWQE{}
	w.WR.WRID = wr.ID
	w.WR.Opcode = uint32(wr.Op)
	flags := wr.Flags
	if len(wr.Inline) > 0 {
		flags |= sendInline
	}
	w.WR.SendFlags = uint32(flags)
	binary.BigEndian.PutUint32(immBytes(&w.WR.Imm), wr.Imm)
	u := w.WR.WR[:]
	switch wr.Op {
	case OpRDMAWrite, OpRDMAWriteImm, OpRDMARead:
		binary.LittleEndian.PutUint64(u[uverbs.RxeWRRemoteAddrOffset:], wr.RemoteAddr)
		binary.LittleEndian.PutUint32(u[uverbs.RxeWRRDMARKeyOffset:], wr.RKey)
		w.IOVA = wr.RemoteAddr
	case OpAtomicCmpSwap, OpAtomicFetchAdd:
		binary.LittleEndian.PutUint64(u[uverbs.RxeWRRemoteAddrOffset:], wr.RemoteAddr)
		binary.LittleEndian.PutUint64(u[uverbs.RxeWRCompareAddOffset:], wr.CompareAdd)
		binary.LittleEndian.PutUint64(u[uverbs.RxeWRSwapOffset:], wr.Swap)
		binary.LittleEndian.PutUint32(u[uverbs.RxeWRAtomicRKeyOffset:], wr.RKey)
		w.IOVA = wr.RemoteAddr
	}
	var length uint32
	if len(wr.Inline) > 0 {
		dst := q.SendInline(i)
		if len(wr.Inline) > len(dst) {
			return misuse("post_send", unix.EINVAL, ErrInlineTooBig)
		}
		copy(dst, wr.Inline)
		length = uint32(len(wr.Inline))
		w.DMA.NumSGE = 1
	} else {
		sg := q.SendSGEs(i, len(wr.SGEs))
		if sg == nil {
			return misuse("post_send", unix.EINVAL, ErrTooManySGEs)
		}
		for k, s := range wr.SGEs {
			sg[k] = uverbs.RxeSGE{Addr: s.Addr, Length: s.Length, LKey: s.LKey}
			length += s.Length
		}
		w.DMA.NumSGE = uint32(len(wr.SGEs))
	}
	w.DMA.Length = length
	w.DMA.Resid = length
	return nil
}

// immBytes views the big-endian imm_data word as bytes.
func immBytes(p *uint32) []byte {
	return uverbs.WordBytes(p)
}

func (r *rxeQP) postRecv(wrs []RecvWR) error {
	r.rqMu.Lock()
	defer r.rqMu.Unlock()
	if r.rqDead {
		return misuse("post_recv", unix.EBADF, ErrClosed)
	}
	q := r.rq
	if uint32(len(wrs)) > free(q) {
		return misuse("post_recv", unix.ENOMEM, ErrQueueFull)
	}
	prod := q.Producer()
	for i := range wrs {
		wr := &wrs[i]
		w := q.RecvWQE(prod)
		*w = uverbs.RxeRecvWQE{WRID: wr.ID}
		sg := q.RecvSGEs(prod, len(wr.SGEs))
		if sg == nil {
			return misuse("post_recv", unix.EINVAL, ErrTooManySGEs)
		}
		var length uint32
		for k, s := range wr.SGEs {
			sg[k] = uverbs.RxeSGE{Addr: s.Addr, Length: s.Length, LKey: s.LKey}
			length += s.Length
		}
		w.DMA.Length, w.DMA.Resid, w.DMA.NumSGE = length, length, uint32(len(wr.SGEs))
		prod = (prod + 1) & q.Mask()
	}
	// The responder takes receive WQEs as packets arrive: publishing the
	// producer index is the whole post.
	q.SetProducer(prod)
	return nil
}

func (r *rxeQP) close() error {
	r.sqMu.Lock()
	r.sqDead = true
	err1 := r.sq.Unmap()
	r.sqMu.Unlock()
	r.rqMu.Lock()
	r.rqDead = true
	err2 := r.rq.Unmap()
	r.rqMu.Unlock()
	if err1 != nil {
		return err1
	}
	return err2
}
