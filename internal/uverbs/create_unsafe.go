package uverbs

import (
	"errors"
	"unsafe"

	"golang.org/x/sys/unix"
)

// errNoNative is what the native create methods return when ioctl is not
// in use at all (ForceWrite, or ENOTTY earlier).
var errNoNative = errors.New("native ioctl methods not in use")

// NoNative reports whether err means "the kernel has no native method for
// this (or no ioctl at all): use the write command instead", the errnos on
// which rdma-core falls back (libibverbs/cmd_fallback.c). A fallback is
// counted in Fallbacks.
func (f *FD) NoNative(err error) bool {
	switch {
	case errors.Is(err, errNoNative):
		return true
	case errors.Is(err, unix.ENOTTY):
		f.noIoctl.Store(true)
		return true
	case errors.Is(err, unix.EPROTONOSUPPORT), errors.Is(err, unix.EOPNOTSUPP):
		f.fallbacks.Add(1)
		return true
	}
	return false
}

// inline puts a value of up to 8 bytes into an attribute's data.
func inline[T uint32 | uint64](id uint16, v T) Attr {
	return Attr{AttrID: id, Len: uint16(unsafe.Sizeof(v)), Flags: UVERBS_ATTR_F_MANDATORY, Data: uint64(v)}
}

// ptrAttr points an attribute at n bytes of the scratch (never at the
// caller's memory, see scratch).
func ptrAttr(id uint16, p unsafe.Pointer, n uintptr) Attr {
	return Attr{AttrID: id, Len: uint16(n), Flags: UVERBS_ATTR_F_MANDATORY, Data: uint64(uintptr(p))}
}

// CreateCQNative runs UVERBS_METHOD_CQ_CREATE: the same request as the
// CREATE_CQ write command, as attributes, with the completion channel (if
// req.CompChannel >= 0) as an fd attribute. core gets the handle and the real
// depth, drv the provider's udata response.
func CreateCQNative[D any](f *FD, req *CreateCQ, core *CreateCQResp, drv *D) error {
	if f.noIoctl.Load() {
		return errNoNative
	}
	drvLen := unsafe.Sizeof(*drv)
	if drvLen > maxResp {
		panic("BUG: driver response larger than the scratch buffer")
	}
	s := getScratch()
	defer putScratch(s)
	cqe := (*uint32)(unsafe.Pointer(&s.out[0]))
	b := &s.b
	b.attrs[0] = Attr{AttrID: UVERBS_ATTR_CREATE_CQ_HANDLE, Flags: UVERBS_ATTR_F_MANDATORY} // the kernel writes the new handle into data
	b.attrs[1] = inline(UVERBS_ATTR_CREATE_CQ_CQE, req.CQE)
	b.attrs[2] = inline(UVERBS_ATTR_CREATE_CQ_USER_HANDLE, req.UserHandle)
	b.attrs[3] = inline(UVERBS_ATTR_CREATE_CQ_COMP_VECTOR, req.CompVector)
	b.attrs[4] = ptrAttr(UVERBS_ATTR_CREATE_CQ_RESP_CQE, unsafe.Pointer(cqe), 4)
	b.attrs[5] = ptrAttr(UVERBS_ATTR_UHW_OUT, unsafe.Pointer(&s.resp[0]), drvLen)
	n := 6
	if req.CompChannel >= 0 {
		// An fd attribute has no length; the kernel reads data as an s64.
		b.attrs[n] = Attr{AttrID: UVERBS_ATTR_CREATE_CQ_COMP_CHANNEL, Flags: UVERBS_ATTR_F_MANDATORY, Data: uint64(req.CompChannel)}
		n++
	}
	if err := f.ioctl(b, UVERBS_OBJECT_CQ, UVERBS_METHOD_CQ_CREATE, n); err != nil {
		return err
	}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(drv)), drvLen), s.resp[:drvLen])
	*core = CreateCQResp{CQHandle: uint32(b.attrs[0].Data), CQE: *cqe}
	return nil
}

// CreateQPNative runs UVERBS_METHOD_QP_CREATE for a QP with a PD, send and
// receive CQs and no SRQ: the CREATE_QP write command's request as
// attributes. core gets what CREATE_QP would have answered, drv the
// provider's udata response.
func CreateQPNative[D any](f *FD, req *CreateQP, core *CreateQPResp, drv *D) error {
	if f.noIoctl.Load() || req.IsSRQ != 0 || req.SRQHandle != 0 {
		return errNoNative
	}
	drvLen := unsafe.Sizeof(*drv)
	if drvLen > maxResp {
		panic("BUG: driver response larger than the scratch buffer")
	}
	s := getScratch()
	defer putScratch(s)
	io := (*struct {
		cap, resp QPCap
		qpn       uint32
	})(unsafe.Pointer(&s.out[0]))
	io.cap = QPCap{MaxSendWR: req.MaxSendWR, MaxRecvWR: req.MaxRecvWR, MaxSendSGE: req.MaxSendSGE,
		MaxRecvSGE: req.MaxRecvSGE, MaxInlineData: req.MaxInlineData}
	var flags uint32
	if req.SQSigAll != 0 {
		flags |= IB_UVERBS_QP_CREATE_SQ_SIG_ALL
	}
	capLen := unsafe.Sizeof(io.cap)
	b := &s.b
	b.attrs[0] = Attr{AttrID: UVERBS_ATTR_CREATE_QP_HANDLE, Flags: UVERBS_ATTR_F_MANDATORY} // the kernel writes the new handle into data
	b.attrs[1] = Attr{AttrID: UVERBS_ATTR_CREATE_QP_PD_HANDLE, Flags: UVERBS_ATTR_F_MANDATORY, Data: uint64(req.PDHandle)}
	b.attrs[2] = Attr{AttrID: UVERBS_ATTR_CREATE_QP_SEND_CQ_HANDLE, Flags: UVERBS_ATTR_F_MANDATORY, Data: uint64(req.SendCQHandle)}
	b.attrs[3] = Attr{AttrID: UVERBS_ATTR_CREATE_QP_RECV_CQ_HANDLE, Flags: UVERBS_ATTR_F_MANDATORY, Data: uint64(req.RecvCQHandle)}
	b.attrs[4] = inline(UVERBS_ATTR_CREATE_QP_USER_HANDLE, req.UserHandle)
	b.attrs[5] = ptrAttr(UVERBS_ATTR_CREATE_QP_CAP, unsafe.Pointer(&io.cap), capLen) // over 8 bytes: by pointer
	b.attrs[6] = inline(UVERBS_ATTR_CREATE_QP_TYPE, uint64(req.QPType))              // a const attribute is a u64
	b.attrs[7] = inline(UVERBS_ATTR_CREATE_QP_FLAGS, flags)
	b.attrs[8] = ptrAttr(UVERBS_ATTR_CREATE_QP_RESP_CAP, unsafe.Pointer(&io.resp), capLen)
	b.attrs[9] = ptrAttr(UVERBS_ATTR_CREATE_QP_RESP_QP_NUM, unsafe.Pointer(&io.qpn), 4)
	b.attrs[10] = ptrAttr(UVERBS_ATTR_UHW_OUT, unsafe.Pointer(&s.resp[0]), drvLen)
	if err := f.ioctl(b, UVERBS_OBJECT_QP, UVERBS_METHOD_QP_CREATE, 11); err != nil {
		return err
	}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(drv)), drvLen), s.resp[:drvLen])
	r := io.resp
	*core = CreateQPResp{QPHandle: uint32(b.attrs[0].Data), QPN: io.qpn, MaxSendWR: r.MaxSendWR, MaxRecvWR: r.MaxRecvWR,
		MaxSendSGE: r.MaxSendSGE, MaxRecvSGE: r.MaxRecvSGE, MaxInlineData: r.MaxInlineData}
	return nil
}
