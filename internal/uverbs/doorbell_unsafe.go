package uverbs

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Doorbell is a POST_SEND command with zero work requests, built once and
// sent for every post: it makes rxe run its requester over the new send
// WQEs, in the calling thread.
type Doorbell struct {
	fd    int
	ioctl bool
	// buf is the whole command (write header + request, or ioctl header +
	// attributes); resp is where the kernel writes bad_wr. Both live on the
	// heap because their addresses go to the kernel.
	wbuf *doorbellWrite
	ibuf *ioctlBuf
	resp *PostSendResp
}

type doorbellWrite struct {
	hdr CmdHdr
	req PostSend
}

// NewDoorbell prepares the doorbell of QP qpHandle. With useIoctl it goes
// through RDMA_VERBS_IOCTL / UVERBS_METHOD_INVOKE_WRITE like the other
// commands; otherwise through write(), as rdma-core's rxe provider rings it
// (providers/rxe/rxe.c post_send_db) and at less cost per post.
func (f *FD) NewDoorbell(qpHandle uint32, useIoctl bool) *Doorbell {
	d := &Doorbell{fd: f.fd, ioctl: useIoctl && !f.noIoctl.Load(), resp: new(PostSendResp)}
	req := PostSend{Response: Ptr(d.resp), QPHandle: qpHandle, WQESize: PostSendWQESize}
	if d.ioctl {
		d.ibuf = new(ioctlBuf)
		d.wbuf = &doorbellWrite{req: req} // CORE_IN points here
		b := d.ibuf
		b.attrs[0] = Attr{AttrID: UVERBS_ATTR_WRITE_CMD, Len: 8, Flags: UVERBS_ATTR_F_MANDATORY, Data: IB_USER_VERBS_CMD_POST_SEND}
		b.attrs[1] = Attr{AttrID: UVERBS_ATTR_CORE_IN, Len: uint16(unsafe.Sizeof(req)), Flags: UVERBS_ATTR_F_MANDATORY, Data: Ptr(&d.wbuf.req)}
		b.attrs[2] = Attr{AttrID: UVERBS_ATTR_CORE_OUT, Len: uint16(unsafe.Sizeof(*d.resp)), Flags: UVERBS_ATTR_F_MANDATORY, Data: Ptr(d.resp)}
		b.hdr = IoctlHdr{
			Length:   uint16(unsafe.Sizeof(b.hdr) + 3*unsafe.Sizeof(Attr{})),
			ObjectID: UVERBS_OBJECT_DEVICE,
			MethodID: UVERBS_METHOD_INVOKE_WRITE,
			NumAttrs: 3,
			DriverID: f.driverID,
		}
		return d
	}
	d.wbuf = &doorbellWrite{
		hdr: CmdHdr{Command: IB_USER_VERBS_CMD_POST_SEND, InWords: uint16(unsafe.Sizeof(doorbellWrite{}) / 4), OutWords: uint16(unsafe.Sizeof(*d.resp) / 4)},
		req: req,
	}
	return d
}

// UsesIoctl reports which path the doorbell takes.
func (d *Doorbell) UsesIoctl() bool { return d.ioctl }

// Ring sends the doorbell. It uses RawSyscall: rxe runs the requester inline
// under a spinlock and returns without sleeping, and with Syscall a doorbell
// that takes longer than sysmon's 20 µs (common under emulation) would hand
// the P to another thread and pay for getting it back on return.
func (d *Doorbell) Ring() error {
	var e unix.Errno
	if d.ioctl {
		_, _, e = unix.RawSyscall(unix.SYS_IOCTL, uintptr(d.fd), RDMA_VERBS_IOCTL, uintptr(unsafe.Pointer(d.ibuf)))
	} else {
		n, _, en := unix.RawSyscall(unix.SYS_WRITE, uintptr(d.fd), uintptr(unsafe.Pointer(d.wbuf)), unsafe.Sizeof(*d.wbuf))
		if e = en; e == 0 && n != unsafe.Sizeof(*d.wbuf) {
			e = unix.EIO
		}
	}
	if e != 0 {
		return e
	}
	return nil
}
