package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
)

const (
	rxeName    = "rxe0"
	netdevName = "d0"
)

// guestSetup runs inside the VM before the tests: a dummy netdev with an IPv4
// address (without one rxe has no RoCE v2 GID) and rxe0 on it.
func guestSetup(ctx context.Context, name string) error {
	if name != "rxe" {
		return fmt.Errorf("unknown setup %q", name)
	}
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return err
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	d0 := &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: netdevName}}
	if err := netlink.LinkAdd(d0); err != nil {
		return fmt.Errorf("add %s: %w", netdevName, err)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(10, 9, 0, 1), Mask: net.CIDRMask(24, 32)}}
	if err := netlink.AddrAdd(d0, addr); err != nil {
		return fmt.Errorf("address %s: %w", netdevName, err)
	}
	if err := netlink.LinkSetUp(d0); err != nil {
		return fmt.Errorf("%s up: %w", netdevName, err)
	}
	if err := netlink.RdmaLinkAdd(rxeName, "rxe", netdevName); err != nil {
		return fmt.Errorf("rdma link add %s: %w", rxeName, err)
	}
	// The uverbs node and the IPv4-mapped GID appear asynchronously.
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err1 := os.Stat("/dev/infiniband/uverbs0")
		gid, err2 := os.ReadFile("/sys/class/infiniband/" + rxeName + "/ports/1/gids/1")
		if err1 == nil && err2 == nil && strings.Trim(string(gid), "0:\n") != "" {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s not ready: uverbs0 %v, gid 1 %q %v", rxeName, err1, gid, err2)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
