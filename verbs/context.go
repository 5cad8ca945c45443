package verbs

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/bcship/bcship/internal/uverbs"
	"golang.org/x/sys/unix"
)

// Context is an open device: the uverbs command file after GET_CONTEXT.
type Context struct {
	Device DeviceInfo

	fd      *uverbs.FD
	prov    provider
	asyncFD int
	// ioctlDoorbell: !Options.WriteDoorbell.
	ioctlDoorbell  bool
	noNativeCreate bool // Options.NoNativeCreate
	// userHandles names CQs in completion channel events.
	userHandles atomic.Uint64

	mu     sync.Mutex
	closed bool
	chans  map[*CompChannel]struct{} // open completion channels
}

// Options tunes Open.
type Options struct {
	// ForceWrite sends every command with write() instead of
	// RDMA_VERBS_IOCTL (for comparisons and for kernels without ioctl).
	ForceWrite bool
	// WriteDoorbell rings the send doorbell (POST_SEND with no work
	// requests) with write(), as rdma-core's rxe provider does, instead of
	// RDMA_VERBS_IOCTL INVOKE_WRITE (the default, like every other write
	// command; write() remains the fallback where the ioctl is refused).
	// BenchmarkDoorbell measures no difference under TCG.
	WriteDoorbell bool
	// NoNativeCreate creates CQs and QPs with the CREATE_CQ/CREATE_QP
	// write-command structs (through INVOKE_WRITE) instead of the native
	// UVERBS_METHOD_CQ_CREATE/QP_CREATE methods, which are otherwise tried
	// first (for comparisons).
	NoNativeCreate bool
}

// Open opens the named RDMA device.
func Open(ctx context.Context, name string, opts *Options) (*Context, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d, err := Device(name)
	if err != nil {
		return nil, err
	}
	if d.Uverbs == "" {
		return nil, misuse("open "+name, unix.ENODEV, ErrNoDevice)
	}
	prov, err := providerFor(d)
	if err != nil {
		return nil, err
	}
	fd, err := uverbs.Open(d.Uverbs, prov.driverID())
	if err != nil {
		return nil, opErr("open "+d.Uverbs, err)
	}
	if opts != nil && opts.ForceWrite {
		fd.ForceWrite()
	}
	c := &Context{Device: *d, fd: fd, prov: prov, asyncFD: -1, ioctlDoorbell: opts == nil || !opts.WriteDoorbell,
		noNativeCreate: opts != nil && opts.NoNativeCreate}
	var resp uverbs.GetContextResp
	req := uverbs.GetContext{Response: uverbs.Ptr(&resp)}
	if err := uverbs.Call(fd, uverbs.IB_USER_VERBS_CMD_GET_CONTEXT, &req, &resp); err != nil {
		fd.Close()
		return nil, opErr("get_context", err)
	}
	c.asyncFD = int(resp.AsyncFD)
	unix.CloseOnExec(c.asyncFD)
	return c, nil
}

// UsesWrite reports whether commands travel by write() (ioctl refused or
// Options.ForceWrite).
func (c *Context) UsesWrite() bool { return c.fd.UsesWrite() }

// WriteFallbacks counts commands that the ioctl path refused
// (EPROTONOSUPPORT) and that went through write() instead.
func (c *Context) WriteFallbacks() uint64 { return c.fd.Fallbacks() }

// Close closes the device; the kernel destroys whatever is still open on it.
// Its completion channels are closed too (a Wait returns ErrClosed).
func (c *Context) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	// Before the command file: a waiter then sees ErrClosed, not the
	// error of a channel the kernel has shut.
	for ch := range c.chans {
		ch.shut()
	}
	c.chans = nil
	if c.asyncFD >= 0 {
		unix.Close(c.asyncFD)
	}
	return opErr("close", c.fd.Close())
}

func (c *Context) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// DeviceAttr is a subset of QUERY_DEVICE.
type DeviceAttr struct {
	FwVer                                 uint64
	MaxMRSize                             uint64
	VendorID, VendorPartID                uint32
	MaxQP, MaxQPWR, MaxSGE, MaxCQ, MaxCQE uint32
	MaxMR, MaxPD                          uint32
	MaxQPRdAtom, MaxQPInitRdAtom          uint32
	PhysPortCnt                           uint8
}

// QueryDevice runs QUERY_DEVICE.
func (c *Context) QueryDevice() (DeviceAttr, error) {
	if c.isClosed() {
		return DeviceAttr{}, misuse("query_device", unix.EBADF, ErrClosed)
	}
	var r uverbs.QueryDeviceResp
	req := uverbs.QueryDevice{Response: uverbs.Ptr(&r)}
	if err := uverbs.Call(c.fd, uverbs.IB_USER_VERBS_CMD_QUERY_DEVICE, &req, &r); err != nil {
		return DeviceAttr{}, opErr("query_device", err)
	}
	return DeviceAttr{
		FwVer: r.FwVer, MaxMRSize: r.MaxMRSize, VendorID: r.VendorID, VendorPartID: r.VendorPartID,
		MaxQP: r.MaxQP, MaxQPWR: r.MaxQPWR, MaxSGE: r.MaxSGE, MaxCQ: r.MaxCQ, MaxCQE: r.MaxCQE,
		MaxMR: r.MaxMR, MaxPD: r.MaxPD, MaxQPRdAtom: r.MaxQPRdAtom, MaxQPInitRdAtom: r.MaxQPInitRdAtom,
		PhysPortCnt: r.PhysPortCnt,
	}, nil
}

// MTU is an IB path MTU (enum ib_mtu).
type MTU uint8

const (
	MTU256  MTU = 1
	MTU512  MTU = 2
	MTU1024 MTU = 3
	MTU2048 MTU = 4
	MTU4096 MTU = 5
)

// Bytes is the MTU in bytes.
func (m MTU) Bytes() int { return 128 << m }

// PortAttr is a subset of QUERY_PORT.
type PortAttr struct {
	State      uint8 // 4 = ACTIVE
	MaxMTU     MTU
	ActiveMTU  MTU
	GIDTblLen  uint32
	LinkLayer  uint8 // 2 = Ethernet
	MaxMsgSize uint32
}

// PortActive is enum ib_port_state IB_PORT_ACTIVE.
const PortActive = 4

// QueryPort runs the native UVERBS_METHOD_QUERY_PORT ioctl, or the
// QUERY_PORT write command where that is refused.
func (c *Context) QueryPort(port uint8) (PortAttr, error) {
	if c.isClosed() {
		return PortAttr{}, misuse("query_port", unix.EBADF, ErrClosed)
	}
	var r uverbs.QueryPortResp
	var ex uverbs.QueryPortRespEx
	err := errors.New("ioctl not used")
	if !c.fd.UsesWrite() {
		err = c.fd.QueryPortEx(port, &ex)
		r = ex.Legacy
	}
	if err != nil {
		req := uverbs.QueryPort{Response: uverbs.Ptr(&r), PortNum: port}
		if err := uverbs.Call(c.fd, uverbs.IB_USER_VERBS_CMD_QUERY_PORT, &req, &r); err != nil {
			return PortAttr{}, opErr("query_port", err)
		}
	}
	return PortAttr{State: r.State, MaxMTU: MTU(r.MaxMTU), ActiveMTU: MTU(r.ActiveMTU), GIDTblLen: r.GIDTblLen,
		LinkLayer: r.LinkLayer, MaxMsgSize: r.MaxMsgSz}, nil
}

// GIDEntry is a GID table entry as the kernel reports it.
type GIDEntry struct {
	Index   uint32
	GID     net.IP
	Type    uint32 // 2 = RoCE v2
	Ifindex uint32
}

// QueryGID runs the native UVERBS_METHOD_QUERY_GID_ENTRY ioctl (there is
// no write command for it); where that is refused it reads sysfs.
func (c *Context) QueryGID(port uint8, index uint32) (GIDEntry, error) {
	if c.isClosed() {
		return GIDEntry{}, misuse("query_gid", unix.EBADF, ErrClosed)
	}
	var e uverbs.GIDEntry
	if err := c.fd.QueryGIDEntry(uint32(port), index, &e); err == nil {
		return GIDEntry{Index: e.GIDIndex, GID: net.IP(e.GID[:]), Type: e.GIDType, Ifindex: e.NetdevIfindex}, nil
	} else if !errors.Is(err, unix.ENOTTY) && !errors.Is(err, unix.EPROTONOSUPPORT) {
		return GIDEntry{}, opErr("query_gid", err)
	}
	for _, p := range c.Device.Ports {
		if p.Port != int(port) {
			continue
		}
		pd := filepath.Join(sysInfiniband, c.Device.Name, "ports", itoa(int(port)))
		ip := net.ParseIP(readSys(pd, "gids", itoa(int(index))))
		if ip == nil {
			break
		}
		ge := GIDEntry{Index: index, GID: ip.To16()}
		if readSys(pd, "gid_attrs", "types", itoa(int(index))) == "RoCE v2" {
			ge.Type = uverbs.IB_UVERBS_GID_TYPE_ROCE_V2
		}
		if nd := readSys(pd, "gid_attrs", "ndevs", itoa(int(index))); nd != "" {
			if ifi, err := net.InterfaceByName(nd); err == nil {
				ge.Ifindex = uint32(ifi.Index)
			}
		}
		return ge, nil
	}
	return GIDEntry{}, misuse("query_gid", unix.ENODATA, ErrNoGID)
}

// PD is a protection domain.
type PD struct {
	ctx    *Context
	handle uint32
	mu     sync.Mutex
	closed bool
}

// AllocPD runs ALLOC_PD.
func (c *Context) AllocPD() (*PD, error) {
	if c.isClosed() {
		return nil, misuse("alloc_pd", unix.EBADF, ErrClosed)
	}
	var r uverbs.AllocPDResp
	req := uverbs.AllocPD{Response: uverbs.Ptr(&r)}
	if err := uverbs.Call(c.fd, uverbs.IB_USER_VERBS_CMD_ALLOC_PD, &req, &r); err != nil {
		return nil, opErr("alloc_pd", err)
	}
	return &PD{ctx: c, handle: r.PDHandle}, nil
}

// Close runs DEALLOC_PD (EBUSY while MRs or QPs still use it).
func (pd *PD) Close() error {
	pd.mu.Lock()
	defer pd.mu.Unlock()
	if pd.closed {
		return nil
	}
	if !pd.ctx.isClosed() {
		req := uverbs.DeallocPD{PDHandle: pd.handle}
		if err := uverbs.CallNoResp(pd.ctx.fd, uverbs.IB_USER_VERBS_CMD_DEALLOC_PD, &req); err != nil {
			return opErr("dealloc_pd", err)
		}
	}
	pd.closed = true
	return nil
}

func (pd *PD) isClosed() bool {
	pd.mu.Lock()
	defer pd.mu.Unlock()
	return pd.closed || pd.ctx.isClosed()
}

// Access is a set of MR / QP access rights.
type Access uint32

const (
	AccessLocalWrite   Access = uverbs.IB_UVERBS_ACCESS_LOCAL_WRITE
	AccessRemoteWrite  Access = uverbs.IB_UVERBS_ACCESS_REMOTE_WRITE
	AccessRemoteRead   Access = uverbs.IB_UVERBS_ACCESS_REMOTE_READ
	AccessRemoteAtomic Access = uverbs.IB_UVERBS_ACCESS_REMOTE_ATOMIC

	// AccessAll is every right bcship's transports use.
	AccessAll = AccessLocalWrite | AccessRemoteWrite | AccessRemoteRead | AccessRemoteAtomic
)

// MR is a registered memory region.
type MR struct {
	pd     *PD
	buf    []byte
	handle uint32
	LKey   uint32
	RKey   uint32
	mu     sync.Mutex
	closed bool
}

// RegMR registers buf (use AllocBuffer: the memory must not move) with
// access rights. Remote write and atomic need AccessLocalWrite as well.
func (pd *PD) RegMR(buf []byte, access Access) (*MR, error) {
	if pd.isClosed() {
		return nil, misuse("reg_mr", unix.EBADF, ErrClosed)
	}
	if len(buf) == 0 {
		return nil, misuse("reg_mr", unix.EINVAL, ErrOutOfBounds)
	}
	var r uverbs.RegMRResp
	addr := uverbs.Addr(buf)
	req := uverbs.RegMR{Response: uverbs.Ptr(&r), Start: addr, Length: uint64(len(buf)), HCAVA: addr,
		PDHandle: pd.handle, AccessFlags: uint32(access)}
	if err := uverbs.Call(pd.ctx.fd, uverbs.IB_USER_VERBS_CMD_REG_MR, &req, &r); err != nil {
		return nil, opErr("reg_mr", err)
	}
	return &MR{pd: pd, buf: buf, handle: r.MRHandle, LKey: r.LKey, RKey: r.RKey}, nil
}

// Bytes is the registered memory.
func (mr *MR) Bytes() []byte { return mr.buf }

// Addr is the address of byte off of the region, as remote peers name it.
func (mr *MR) Addr(off int) uint64 { return uverbs.Addr(mr.buf) + uint64(off) }

// SGE describes n bytes at offset off of the region, checking the bounds.
func (mr *MR) SGE(off, n int) (SGE, error) {
	if off < 0 || n < 0 || off > len(mr.buf) || n > len(mr.buf)-off {
		return SGE{}, misuse("sge", unix.EINVAL, ErrOutOfBounds)
	}
	return SGE{Addr: mr.Addr(off), Length: uint32(n), LKey: mr.LKey}, nil
}

// Close runs DEREG_MR. The buffer stays mapped: free it afterwards.
func (mr *MR) Close() error {
	mr.mu.Lock()
	defer mr.mu.Unlock()
	if mr.closed {
		return nil
	}
	if !mr.pd.ctx.isClosed() {
		req := uverbs.DeregMR{MRHandle: mr.handle}
		if err := uverbs.CallNoResp(mr.pd.ctx.fd, uverbs.IB_USER_VERBS_CMD_DEREG_MR, &req); err != nil {
			return opErr("dereg_mr", err)
		}
	}
	mr.closed = true
	return nil
}

// SGE is a scatter/gather element: Length bytes at Addr in the MR of LKey.
type SGE struct {
	Addr   uint64
	Length uint32
	LKey   uint32
}

func itoa(i int) string { return strconv.Itoa(i) }
