package verbs

import (
	"github.com/bcship/bcship/internal/uverbs"
	"golang.org/x/sys/unix"
)

// provider is the device-specific half of the verbs layer: the driver id
// the kernel expects in ioctls, the udata responses of CREATE_CQ/CREATE_QP,
// and the data path built on them. rxe is the only one so far; mlx5 (doorbell
// pages, BlueFlame, its own CQE format) would be a second implementation.
type provider interface {
	driverID() uint32
	// createCQ runs CREATE_CQ (req is filled except Response) and returns
	// the handle, the real depth and the data path.
	createCQ(c *Context, req *uverbs.CreateCQ) (uverbs.CreateCQResp, cqRing, error)
	// createQP runs CREATE_QP likewise.
	createQP(c *Context, req *uverbs.CreateQP) (uverbs.CreateQPResp, qpRings, error)
}

// cqRing polls completions.
type cqRing interface {
	poll(wcs []WC) int
	close() error
}

// qpRings posts work requests. The QP has checked its state and the
// requests' shape (SGE count, inline size) before calling.
type qpRings interface {
	postSend(wrs []SendWR) error
	postRecv(wrs []RecvWR) error
	close() error
}

// providerFor picks the provider by the kernel driver behind the device.
func providerFor(d *DeviceInfo) (provider, error) {
	// rxe devices have no parent bus device; their hca_type reads
	// "rxe" in newer kernels, and the name is conventionally rxeN.
	if t := readSys(sysInfiniband, d.Name, "hca_type"); t == "rxe" || len(d.Name) >= 3 && d.Name[:3] == "rxe" {
		return rxeProvider{}, nil
	}
	return nil, misuse("open "+d.Name, unix.EOPNOTSUPP, ErrNotSupported)
}
