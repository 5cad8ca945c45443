package verbs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// AddRxe creates a soft-RoCE device name on netdev through RDMA netlink
// (RDMA_NLDEV_CMD_NEWLINK, what `rdma link add NAME type rxe netdev DEV`
// sends) and waits until its uverbs node and a RoCE v2 GID exist. netdev must
// be up and have an IPv4 address, else rxe never gets a RoCE v2 GID for it.
func AddRxe(ctx context.Context, name, netdev string) (*DeviceInfo, error) {
	op := "rxe add " + name
	if name == "" || strings.ContainsAny(name, "/. \t") {
		return nil, &Error{Op: op, Errno: unix.EINVAL, Err: fmt.Errorf("bad device name %q", name)}
	}
	if _, err := Device(name); err == nil {
		return nil, &Error{Op: op, Errno: unix.EEXIST, Err: ErrExists}
	}
	if err := CheckNetdev(netdev); err != nil {
		return nil, err
	}
	if err := netlink.RdmaLinkAdd(name, "rxe", netdev); err != nil {
		return nil, linkErr(op, err)
	}
	// The port and its GIDs appear asynchronously after NEWLINK.
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		d, err := Device(name)
		if err == nil && d.Uverbs != "" {
			if _, ok := d.RoCEv2GID(1); ok {
				return d, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, &Error{Op: op + " (waiting for GID)", Errno: unix.ETIMEDOUT, Err: ctx.Err()}
		case <-t.C:
		}
	}
}

// DelRxe removes an rxe device (RDMA_NLDEV_CMD_DELLINK).
func DelRxe(name string) error {
	op := "rxe del " + name
	if _, err := Device(name); err != nil {
		return &Error{Op: op, Errno: unix.ENODEV, Err: ErrNoDevice}
	}
	return linkErr(op, netlink.RdmaLinkDel(name))
}

// linkErr explains the usual reasons RDMA netlink refuses a link command.
func linkErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var errno unix.Errno
	if !errors.As(err, &errno) {
		return &Error{Op: op, Errno: unix.EIO, Err: err}
	}
	switch {
	case errno == unix.EPERM || errno == unix.EACCES:
		return &Error{Op: op, Errno: errno, Err: ErrPermission}
	case errno == unix.EPROTONOSUPPORT || errno == unix.EAFNOSUPPORT:
		// No NETLINK_RDMA at all: ib_core is not loaded.
		return &Error{Op: op, Errno: errno, Err: ErrNoRxeModule}
	case !moduleLoaded("rdma_rxe"):
		// NEWLINK asks for module rdma-link-rxe and answers EINVAL when
		// there is none.
		return &Error{Op: op, Errno: errno, Err: ErrNoRxeModule}
	}
	return &Error{Op: op, Errno: errno}
}

func moduleLoaded(name string) bool {
	_, err := os.Stat("/sys/module/" + name)
	return err == nil
}

// Link is an RDMA device as RDMA netlink lists it.
type Link struct {
	Index uint32
	Name  string
}

// Links lists RDMA devices through RDMA netlink (RDMA_NLDEV_CMD_GET dump).
func Links() ([]Link, error) {
	ls, err := netlink.RdmaLinkList()
	if err != nil {
		return nil, opErr("rdma link list", err)
	}
	out := make([]Link, 0, len(ls))
	for _, l := range ls {
		out = append(out, Link{Index: l.Attrs.Index, Name: l.Attrs.Name})
	}
	return out, nil
}

// CheckNetdev verifies that netdev exists, is up and has an IPv4 address.
func CheckNetdev(netdev string) error {
	op := "netdev " + netdev
	l, err := netlink.LinkByName(netdev)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return &Error{Op: op, Errno: unix.ENODEV, Err: fmt.Errorf("%w: no network device %q", ErrNetdev, netdev)}
		}
		return opErr(op, err)
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		return &Error{Op: op, Errno: unix.ENETDOWN, Err: fmt.Errorf("%w: %s is down, and rxe only brings its port up with the link (ip link set %s up)", ErrNetdev, netdev, netdev)}
	}
	addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return opErr(op, err)
	}
	if len(addrs) == 0 {
		return &Error{Op: op, Errno: unix.EADDRNOTAVAIL, Err: fmt.Errorf("%w: %s has no IPv4 address; rxe derives its RoCE v2 GIDs from the netdev's IP addresses, so no IPv4-mapped GID would ever appear (ip addr add A.B.C.D/N dev %s)", ErrNetdev, netdev, netdev)}
	}
	return nil
}
