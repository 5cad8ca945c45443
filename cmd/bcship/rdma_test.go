package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/bcship/bcship/verbs"
	"github.com/spf13/cobra"
	"github.com/vishvananda/netlink"
)

func runCmd(t *testing.T, cmd *cobra.Command, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

// TestRdmaCLI runs `rxe add`, `rdma devices` and `rxe del` in process on
// a fresh dummy netdev. It needs soft-RoCE: the VM harness runs it
// (make rxe-test).
func TestRdmaCLI(t *testing.T) {
	if os.Getenv("BCSHIP_RXE") == "" {
		t.Skip("needs soft-RoCE: run in the VM (make rxe-test)")
	}
	const nd, name = "d8", "rxe8"
	l := &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: nd}}
	if err := netlink.LinkAdd(l); err != nil {
		t.Fatal(err)
	}
	defer netlink.LinkDel(l)

	out, err := runCmd(t, newRxe(), "add", name, "--netdev", nd)
	if !errors.Is(err, verbs.ErrNetdev) || !strings.Contains(err.Error(), "is down") {
		t.Fatalf("add on a down netdev: %v\n%s", err, out)
	}
	t.Logf("down: %v", err)
	if err := netlink.LinkSetUp(l); err != nil {
		t.Fatal(err)
	}
	_, err = runCmd(t, newRxe(), "add", name, "--netdev", nd)
	if !errors.Is(err, verbs.ErrNetdev) || !strings.Contains(err.Error(), "RoCE v2 GID") {
		t.Fatalf("add without IPv4: %v", err)
	}
	t.Logf("no address: %v", err)
	if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(10, 9, 8, 1), Mask: net.CIDRMask(24, 32)}}); err != nil {
		t.Fatal(err)
	}

	out, err = runCmd(t, newRxe(), "add", name, "--netdev", nd)
	if err != nil {
		t.Fatalf("add: %v\n%s", err, out)
	}
	if !strings.Contains(out, name+" on "+nd) || !strings.Contains(out, "10.9.8.1") {
		t.Fatalf("add said %q", out)
	}
	if _, err := runCmd(t, newRxe(), "add", name, "--netdev", nd); !errors.Is(err, verbs.ErrExists) {
		t.Fatalf("second add: %v", err)
	}

	out, err = runCmd(t, newRdma(), "devices")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("devices:\n%s", out)
	if !lineWith(out, name, "ACTIVE", "10.9.8.1 *", "RoCE v2", nd) {
		t.Fatalf("devices does not list %s with its GID:\n%s", name, out)
	}

	if out, err = runCmd(t, newRxe(), "del", name); err != nil || !strings.Contains(out, "removed "+name) {
		t.Fatalf("del: %v %q", err, out)
	}
	out, err = runCmd(t, newRdma(), "devices")
	if err != nil || strings.Contains(out, name) {
		t.Fatalf("after del (%v):\n%s", err, out)
	}
	if _, err := runCmd(t, newRxe(), "del", name); !errors.Is(err, verbs.ErrNoDevice) {
		t.Fatalf("second del: %v", err)
	}
}

func lineWith(out string, parts ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			return true
		}
	}
	return false
}

func TestRdmaHelp(t *testing.T) {
	out, err := runCmd(t, newRxe(), "add", "--help")
	if err != nil || !strings.Contains(out, "RoCE v2") && !strings.Contains(out, "IPv4") {
		t.Fatalf("%v\n%s", err, out)
	}
	if _, err := runCmd(t, newRxe(), "add", "rxe0"); err == nil || !strings.Contains(err.Error(), "netdev") {
		t.Fatalf("add without --netdev: %v", err)
	}
}
