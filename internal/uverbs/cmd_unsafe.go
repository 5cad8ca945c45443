package uverbs

import (
	"encoding/binary"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// FD is an open /dev/infiniband/uverbsN command file.
type FD struct {
	fd       int
	driverID uint32
	// noIoctl is set once the kernel answers RDMA_VERBS_IOCTL with ENOTTY
	// (no ioctl framework); write() is used from then on, as rdma-core does.
	noIoctl atomic.Bool
	// fallbacks counts commands the ioctl path refused with
	// EPROTONOSUPPORT that then went through write().
	fallbacks atomic.Uint64
}

// Fallbacks is how many commands were refused by the ioctl path and sent
// with write() instead.
func (f *FD) Fallbacks() uint64 { return f.fallbacks.Load() }

// Open opens a uverbs character device. driverID is the RDMA_DRIVER_* of
// the provider, which every ioctl names.
func Open(path string, driverID uint32) (*FD, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return &FD{fd: fd, driverID: driverID}, nil
}

// Fd is the raw descriptor.
func (f *FD) Fd() int { return f.fd }

// Close closes the descriptor; the kernel then destroys every object that
// was created through it.
func (f *FD) Close() error { return unix.Close(f.fd) }

// UsesWrite reports whether commands go through write() because the ioctl
// path was refused.
func (f *FD) UsesWrite() bool { return f.noIoctl.Load() }

// ForceWrite makes every later write command use write() (for tests and
// comparisons).
func (f *FD) ForceWrite() { f.noIoctl.Store(true) }

// Ptr is the user address of p for a u64 field of a command.
func Ptr[T any](p *T) uint64 { return uint64(uintptr(unsafe.Pointer(p))) }

// Addr is the address of b's first byte (0 for an empty slice).
func Addr(b []byte) uint64 {
	if len(b) == 0 {
		return 0
	}
	return uint64(uintptr(unsafe.Pointer(&b[0])))
}

// maxWriteCmd bounds the request a write command may carry (the largest one
// used, MODIFY_QP, is 112 bytes), maxResp the response (QUERY_DEVICE's 176
// bytes is the largest).
const (
	maxWriteCmd = 256
	maxResp     = 256
)

type ioctlBuf struct {
	hdr   IoctlHdr
	attrs [12]Attr
}

// scratch holds everything whose address a command hands to the kernel as
// a u64: the ioctl attributes, the request and the response. Such addresses
// are invisible to the Go runtime, so they must not point into a goroutine
// stack (a stack that grows between taking the address and the system call
// is copied elsewhere, and the kernel would write into the old one).
// scratch objects come from a pool and live on the heap, which does not
// move. Callers' request and response values are copied in and out.
type scratch struct {
	b    ioctlBuf
	wr   [8 + maxWriteCmd]byte // write(): header + request
	resp [maxResp]byte
	out  [64]byte // small out-attributes of native methods
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func getScratch() *scratch { return scratchPool.Get().(*scratch) }

func putScratch(s *scratch) {
	*s = scratch{} // no stale response or handle leaks into the next command
	scratchPool.Put(s)
}

// Exec runs write command cmd. req is the core request; if the command has
// a response (coreResp > 0) its first field is the response pointer, which
// Exec points at its own buffer (the caller's value is ignored). resp gets
// coreResp bytes of core response followed by driverResp bytes of driver
// (udata) response.
//
// The command goes through RDMA_VERBS_IOCTL with UVERBS_METHOD_INVOKE_WRITE;
// if the kernel refuses that with ENOTTY or EPROTONOSUPPORT it is retried with
// write().
func Exec[Req any](f *FD, cmd uint32, req *Req, resp unsafe.Pointer, coreResp, driverResp uintptr) error {
	reqLen := unsafe.Sizeof(*req)
	respLen := coreResp + driverResp
	if reqLen > maxWriteCmd || respLen > maxResp || respLen > 0 && reqLen < 8 {
		panic("BUG: uverbs command or response larger than the scratch buffer")
	}
	s := getScratch()
	defer putScratch(s)
	in := s.wr[8 : 8+reqLen]
	copy(in, unsafe.Slice((*byte)(unsafe.Pointer(req)), reqLen))
	if respLen > 0 {
		binary.NativeEndian.PutUint64(in, uint64(uintptr(unsafe.Pointer(&s.resp[0]))))
	}
	err := errors.New("ioctl not used")
	if !f.noIoctl.Load() {
		err = f.invokeWrite(s, cmd, reqLen, coreResp, driverResp)
		switch {
		case err == nil:
		case errors.Is(err, unix.ENOTTY):
			f.noIoctl.Store(true)
		case errors.Is(err, unix.EPROTONOSUPPORT):
			f.fallbacks.Add(1)
		default:
			return err
		}
	}
	if err != nil {
		if err = f.write(s, cmd, reqLen, respLen); err != nil {
			return err
		}
	}
	if respLen > 0 {
		copy(unsafe.Slice((*byte)(resp), respLen), s.resp[:respLen])
	}
	return nil
}

func (f *FD) invokeWrite(s *scratch, cmd uint32, reqLen, coreResp, driverResp uintptr) error {
	b := &s.b
	req := unsafe.Pointer(&s.wr[8])
	resp := uintptr(unsafe.Pointer(&s.resp[0]))
	n := 0
	b.attrs[n] = Attr{AttrID: UVERBS_ATTR_WRITE_CMD, Len: 8, Flags: UVERBS_ATTR_F_MANDATORY, Data: uint64(cmd)}
	n++
	if reqLen > 0 {
		a := Attr{AttrID: UVERBS_ATTR_CORE_IN, Len: uint16(reqLen), Flags: UVERBS_ATTR_F_MANDATORY}
		if reqLen <= 8 {
			// Inputs of up to 8 bytes travel inline in data.
			copy((*[8]byte)(unsafe.Pointer(&a.Data))[:], unsafe.Slice((*byte)(req), reqLen))
		} else {
			a.Data = uint64(uintptr(req))
		}
		b.attrs[n] = a
		n++
	}
	if coreResp > 0 {
		b.attrs[n] = Attr{AttrID: UVERBS_ATTR_CORE_OUT, Len: uint16(coreResp), Flags: UVERBS_ATTR_F_MANDATORY, Data: uint64(resp)}
		n++
	}
	if driverResp > 0 {
		b.attrs[n] = Attr{AttrID: UVERBS_ATTR_UHW_OUT, Len: uint16(driverResp), Flags: UVERBS_ATTR_F_MANDATORY, Data: uint64(resp + coreResp)}
		n++
	}
	return f.ioctl(b, UVERBS_OBJECT_DEVICE, UVERBS_METHOD_INVOKE_WRITE, n)
}

func (f *FD) ioctl(b *ioctlBuf, object, method uint16, n int) error {
	b.hdr = IoctlHdr{
		Length:   uint16(unsafe.Sizeof(b.hdr) + uintptr(n)*unsafe.Sizeof(Attr{})),
		ObjectID: object,
		MethodID: method,
		NumAttrs: uint16(n),
		DriverID: f.driverID,
	}
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(f.fd), RDMA_VERBS_IOCTL, uintptr(unsafe.Pointer(b)))
	if e != 0 {
		return e
	}
	return nil
}

// write sends the request in s.wr[8:8+reqLen] with write().
func (f *FD) write(s *scratch, cmd uint32, reqLen, respLen uintptr) error {
	total := 8 + reqLen
	*(*CmdHdr)(unsafe.Pointer(&s.wr[0])) = CmdHdr{Command: cmd, InWords: uint16(total / 4), OutWords: uint16(respLen / 4)}
	n, _, e := unix.Syscall(unix.SYS_WRITE, uintptr(f.fd), uintptr(unsafe.Pointer(&s.wr[0])), total)
	if e != 0 {
		return e
	}
	if n != total {
		return unix.EIO
	}
	return nil
}

// QueryPortEx runs the native UVERBS_METHOD_QUERY_PORT.
func (f *FD) QueryPortEx(port uint8, resp *QueryPortRespEx) error {
	s := getScratch()
	defer putScratch(s)
	out := (*QueryPortRespEx)(unsafe.Pointer(&s.resp[0]))
	b := &s.b
	b.attrs[0] = Attr{AttrID: UVERBS_ATTR_QUERY_PORT_PORT_NUM, Len: 8, Flags: UVERBS_ATTR_F_MANDATORY, Data: uint64(port)}
	b.attrs[1] = Attr{AttrID: UVERBS_ATTR_QUERY_PORT_RESP, Len: uint16(unsafe.Sizeof(*resp)), Flags: UVERBS_ATTR_F_MANDATORY, Data: Ptr(out)}
	if err := f.ioctl(b, UVERBS_OBJECT_DEVICE, UVERBS_METHOD_QUERY_PORT, 2); err != nil {
		return err
	}
	*resp = *out
	return nil
}

// QueryGIDEntry runs the native UVERBS_METHOD_QUERY_GID_ENTRY.
func (f *FD) QueryGIDEntry(port uint32, index uint32, resp *GIDEntry) error {
	s := getScratch()
	defer putScratch(s)
	out := (*GIDEntry)(unsafe.Pointer(&s.resp[0]))
	b := &s.b
	b.attrs[0] = Attr{AttrID: UVERBS_ATTR_QUERY_GID_ENTRY_PORT, Len: 8, Flags: UVERBS_ATTR_F_MANDATORY, Data: uint64(port)}
	b.attrs[1] = Attr{AttrID: UVERBS_ATTR_QUERY_GID_ENTRY_GID_INDEX, Len: 8, Flags: UVERBS_ATTR_F_MANDATORY, Data: uint64(index)}
	b.attrs[2] = Attr{AttrID: UVERBS_ATTR_QUERY_GID_ENTRY_FLAGS, Len: 8, Flags: UVERBS_ATTR_F_MANDATORY, Data: 0}
	b.attrs[3] = Attr{AttrID: UVERBS_ATTR_QUERY_GID_ENTRY_RESP_ENTRY, Len: uint16(unsafe.Sizeof(*resp)), Flags: UVERBS_ATTR_F_MANDATORY, Data: Ptr(out)}
	if err := f.ioctl(b, UVERBS_OBJECT_DEVICE, UVERBS_METHOD_QUERY_GID_ENTRY, 4); err != nil {
		return err
	}
	*resp = *out
	return nil
}

// Call runs write command cmd whose whole response is the core response.
func Call[Req, Resp any](f *FD, cmd uint32, req *Req, resp *Resp) error {
	err := Exec(f, cmd, req, unsafe.Pointer(resp), unsafe.Sizeof(*resp), 0)
	runtime.KeepAlive(resp)
	return err
}

// CallDriver runs write command cmd whose response is core bytes of core
// response followed by the provider's (udata) response.
func CallDriver[Req, Resp any](f *FD, cmd uint32, req *Req, resp *Resp, core uintptr) error {
	err := Exec(f, cmd, req, unsafe.Pointer(resp), core, unsafe.Sizeof(*resp)-core)
	runtime.KeepAlive(resp)
	return err
}

// CallNoResp runs write command cmd that has no response.
func CallNoResp[Req any](f *FD, cmd uint32, req *Req) error {
	return Exec(f, cmd, req, nil, 0, 0)
}

// SizeOf is unsafe.Sizeof for callers outside this package.
func SizeOf[T any]() uintptr {
	var v T
	return unsafe.Sizeof(v)
}

// PtrOf is p as an unsafe.Pointer, for Exec callers outside this package.
func PtrOf[T any](p *T) unsafe.Pointer { return unsafe.Pointer(p) }

// WordBytes views a 32-bit field as its 4 bytes in memory order (for
// big-endian fields such as imm_data).
func WordBytes(p *uint32) []byte { return (*[4]byte)(unsafe.Pointer(p))[:] }
