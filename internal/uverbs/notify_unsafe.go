package uverbs

import (
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Notify is a REQ_NOTIFY_CQ command for one CQ, built once per flavour
// (next completion, or solicited only) and sent for every arm: a poller arms
// its CQ each time before it blocks.
type Notify struct {
	f *FD
	// write is set once the ioctl path was refused (ENOTTY, or
	// EPROTONOSUPPORT for this method); write() is used from then on.
	write atomic.Bool
	// The kernel reads the buffers during the system call only, and they
	// never change after NewNotify: concurrent arms need no lock. Heap
	// objects, since their addresses go to the kernel.
	ibuf [2]*notifyIoctl
	wbuf [2]*notifyWrite
}

type notifyIoctl struct {
	hdr   IoctlHdr
	attrs [2]Attr
}

type notifyWrite struct {
	hdr CmdHdr
	req ReqNotifyCQ
}

// NewNotify prepares REQ_NOTIFY_CQ for CQ cqHandle. It goes through
// RDMA_VERBS_IOCTL / UVERBS_METHOD_INVOKE_WRITE like the other write
// commands, and through write() where that is refused.
func (f *FD) NewNotify(cqHandle uint32) *Notify {
	n := &Notify{f: f}
	n.write.Store(f.noIoctl.Load())
	for i := range n.ibuf {
		req := ReqNotifyCQ{CQHandle: cqHandle, SolicitedOnly: uint32(i)}
		n.wbuf[i] = &notifyWrite{
			hdr: CmdHdr{Command: IB_USER_VERBS_CMD_REQ_NOTIFY_CQ, InWords: uint16(unsafe.Sizeof(notifyWrite{}) / 4)},
			req: req,
		}
		b := &notifyIoctl{}
		b.attrs[0] = Attr{AttrID: UVERBS_ATTR_WRITE_CMD, Len: 8, Flags: UVERBS_ATTR_F_MANDATORY, Data: IB_USER_VERBS_CMD_REQ_NOTIFY_CQ}
		// The 8-byte request travels inline in data.
		b.attrs[1] = Attr{AttrID: UVERBS_ATTR_CORE_IN, Len: uint16(unsafe.Sizeof(req)), Flags: UVERBS_ATTR_F_MANDATORY,
			Data: *(*uint64)(unsafe.Pointer(&req))}
		b.hdr = IoctlHdr{
			Length:   uint16(unsafe.Sizeof(*b)),
			ObjectID: UVERBS_OBJECT_DEVICE,
			MethodID: UVERBS_METHOD_INVOKE_WRITE,
			NumAttrs: uint16(len(b.attrs)),
			DriverID: f.driverID,
		}
		n.ibuf[i] = b
	}
	return n
}

// UsesIoctl reports which path the next Arm takes.
func (n *Notify) UsesIoctl() bool { return !n.write.Load() }

// Arm sends REQ_NOTIFY_CQ: the CQ's next completion (with solicitedOnly,
// its next solicited one) queues an event on its completion channel. Like
// Doorbell.Ring it uses RawSyscall: the kernel only sets the CQ's notify
// flag under a spinlock (rxe_req_notify_cq).
func (n *Notify) Arm(solicitedOnly bool) error {
	i := 0
	if solicitedOnly {
		i = 1
	}
	if !n.write.Load() {
		_, _, e := unix.RawSyscall(unix.SYS_IOCTL, uintptr(n.f.fd), RDMA_VERBS_IOCTL, uintptr(unsafe.Pointer(n.ibuf[i])))
		switch e {
		case 0:
			return nil
		case unix.ENOTTY:
			n.f.noIoctl.Store(true)
		case unix.EPROTONOSUPPORT:
			n.f.fallbacks.Add(1)
		default:
			return e
		}
		n.write.Store(true)
	}
	w := n.wbuf[i]
	r, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(n.f.fd), uintptr(unsafe.Pointer(w)), unsafe.Sizeof(*w))
	if e != 0 {
		return e
	}
	if r != unsafe.Sizeof(*w) {
		return unix.EIO
	}
	return nil
}
