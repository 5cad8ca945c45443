package verbs

import (
	"context"
	"fmt"
	"net"
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
	if err := CheckNetdev(netdev); err != nil {
		return nil, err
	}
	if err := netlink.RdmaLinkAdd(name, "rxe", netdev); err != nil {
		return nil, opErr(op, err)
	}
	// The port and its GIDs appear asynchronously after NEWLINK.
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		d, err := Device(name)
		if err == nil && d.Uverbs != "" {
			if _, err := FindRoCEv2GID(name, 1); err == nil {
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
	return opErr("rxe del "+name, netlink.RdmaLinkDel(name))
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
		return opErr(op, err)
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		return &Error{Op: op, Errno: unix.ENETDOWN, Err: fmt.Errorf("%s is down (ip link set %s up)", netdev, netdev)}
	}
	addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return opErr(op, err)
	}
	if len(addrs) == 0 {
		return &Error{Op: op, Errno: unix.EADDRNOTAVAIL, Err: fmt.Errorf("%s has no IPv4 address, so rxe would have no RoCE v2 GID", netdev)}
	}
	return nil
}
