package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bcship/bcship/verbs"
	"github.com/spf13/cobra"
)

// newRxe is `bcship rxe add|del`: soft-RoCE devices through RDMA netlink.
func newRxe() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rxe",
		Short: "Create and remove soft-RoCE (rxe) devices",
		Long: `rxe manages soft-RoCE devices: RDMA over Converged Ethernet implemented by
the kernel module rdma_rxe on top of an ordinary network device, so RDMA
transports and tests run on machines without an RDMA NIC. It talks RDMA
netlink (RDMA_NLDEV_CMD_NEWLINK/DELLINK), like "rdma link add NAME type rxe
netdev DEV", and needs CAP_NET_ADMIN (root).

The network device must be up and have an IPv4 address: rxe derives its
RoCE v2 GIDs from the device's IP addresses, and peers address it by the
IPv4-mapped GID (::ffff:A.B.C.D). Without one the device is created but no
usable GID ever appears.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newRxeAdd(), newRxeDel())
	return cmd
}

func newRxeAdd() *cobra.Command {
	var netdev string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "add NAME --netdev DEV",
		Short: "Create soft-RoCE device NAME on network device DEV",
		Long: `add creates the rxe device NAME on the network device DEV and waits until its
uverbs command node and a RoCE v2 GID exist, then prints them.

It checks first that DEV exists, is up and has an IPv4 address, and explains
what is missing otherwise. The kernel loads rdma_rxe on demand; if the module
is not installed (Debian's cloud kernels lack it) the error says so.`,
		Example: `  bcship rxe add rxe0 --netdev eth0
  ip link add d0 type dummy && ip addr add 10.9.0.1/24 dev d0 && ip link set d0 up
  bcship rxe add rxe0 --netdev d0`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return rxeAdd(cmd.Context(), cmd.OutOrStdout(), args[0], netdev, timeout)
		},
	}
	cmd.Flags().StringVar(&netdev, "netdev", "", "network device to run RoCE on (up, with an IPv4 address)")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "how long to wait for the device's RoCE v2 GID")
	cmd.MarkFlagRequired("netdev")
	return cmd
}

func newRxeDel() *cobra.Command {
	return &cobra.Command{
		Use:   "del NAME",
		Short: "Remove soft-RoCE device NAME",
		Long: `del removes the rxe device NAME (RDMA netlink DELLINK). Processes that still
have it open see their queue pairs fail. Hardware RDMA devices cannot be
removed this way.`,
		Example: `  bcship rxe del rxe0`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return rxeDel(cmd.OutOrStdout(), args[0])
		},
	}
}

// newRdma is `bcship rdma devices`.
func newRdma() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rdma",
		Short: "Inspect RDMA devices",
		Long:  `rdma shows the RDMA devices bcship's verbs layer can use.`,
		Args:  cobra.NoArgs,
	}
	var all bool
	devices := &cobra.Command{
		Use:   "devices",
		Short: "List RDMA devices, their ports and RoCE v2 GIDs",
		Long: `devices lists every RDMA device (sysfs /sys/class/infiniband, with the RDMA
netlink index where netlink answers): its uverbs command node, and per port
the state, link layer and the RoCE v2 GIDs with their network device. The
GID marked "*" is the one bcship connects with (the first IPv4-mapped
RoCE v2 entry). A port that is not ACTIVE, or an Ethernet port without a
RoCE v2 GID, cannot carry bcship traffic; the listing says why.`,
		Example: `  bcship rdma devices
  bcship rdma devices --all-gids`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return rdmaDevices(cmd.OutOrStdout(), all)
		},
	}
	devices.Flags().BoolVar(&all, "all-gids", false, "also list GIDs that are not RoCE v2 (link-local, RoCE v1)")
	cmd.AddCommand(devices)
	return cmd
}

func rxeAdd(ctx context.Context, w io.Writer, name, netdev string, timeout time.Duration) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d, err := verbs.AddRxe(ctx, name, netdev)
	if err != nil {
		return explainRdma(err)
	}
	g, _ := d.RoCEv2GID(1) // AddRxe waited for it
	fmt.Fprintf(w, "%s on %s: %s, RoCE v2 GID %d %s\n", d.Name, netdev, d.Uverbs, g.Index, g.GID)
	return nil
}

func rxeDel(w io.Writer, name string) error {
	if err := verbs.DelRxe(name); err != nil {
		return explainRdma(err)
	}
	fmt.Fprintf(w, "removed %s\n", name)
	return nil
}

func rdmaDevices(w io.Writer, allGIDs bool) error {
	ds, err := verbs.Devices()
	if err != nil {
		return explainRdma(err)
	}
	if len(ds) == 0 {
		fmt.Fprintln(w, "no RDMA devices (no RDMA NIC driver loaded; for soft-RoCE: bcship rxe add rxe0 --netdev DEV)")
		return nil
	}
	index := map[string]uint32{}
	if ls, err := verbs.Links(); err == nil {
		for _, l := range ls {
			index[l.Name] = l.Index
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tINDEX\tUVERBS\tPORT\tSTATE\tLINK\tGID\tTYPE\tNETDEV")
	for i := range ds {
		d := &ds[i]
		idx := "-"
		if i, ok := index[d.Name]; ok {
			idx = fmt.Sprint(i)
		}
		uv := d.Uverbs
		if uv == "" {
			uv = "-"
		}
		if len(d.Ports) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t%s\t-\t-\t-\t-\t-\t-\n", d.Name, idx, uv)
			continue
		}
		for _, p := range d.Ports {
			best, hasBest := d.RoCEv2GID(p.Port)
			prefix := fmt.Sprintf("%s\t%s\t%s\t%d\t%s\t%s", d.Name, idx, uv, p.Port, p.State, p.LinkLayer)
			shown := 0
			for _, g := range p.GIDs {
				if !allGIDs && g.Type != "RoCE v2" {
					continue
				}
				mark := ""
				if hasBest && g.Index == best.Index {
					mark = " *"
				}
				fmt.Fprintf(tw, "%s\t%d %s%s\t%s\t%s\n", prefix, g.Index, g.GID, mark, g.Type, orDash(g.Netdev))
				shown++
			}
			if shown == 0 {
				fmt.Fprintf(tw, "%s\t-\t-\t-\n", prefix)
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// Say why a port is unusable, after the table.
	for i := range ds {
		d := &ds[i]
		for _, p := range d.Ports {
			switch {
			case p.State != "ACTIVE":
				fmt.Fprintf(w, "note: %s port %d is %s: its network device is down or has no carrier\n", d.Name, p.Port, p.State)
			case p.LinkLayer == "Ethernet":
				if _, ok := d.RoCEv2GID(p.Port); !ok {
					fmt.Fprintf(w, "note: %s port %d has no RoCE v2 GID: give its network device an IP address\n", d.Name, p.Port)
				}
			}
		}
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// explainRdma adds a hint for the mistakes people make with rxe.
func explainRdma(err error) error {
	var ve *verbs.Error
	if !errors.As(err, &ve) {
		return err
	}
	var hint string
	switch {
	case errors.Is(err, verbs.ErrPermission):
		if os.Geteuid() != 0 {
			hint = "you are not root"
		}
	case errors.Is(err, verbs.ErrNoRxeModule):
		hint = "check with: ls /sys/module/rdma_rxe; the module ships with the full kernel package (linux-image-*-amd64, not -cloud)"
	case errors.Is(err, verbs.ErrNoDevice):
		hint = "list devices with: bcship rdma devices"
	case errors.Is(err, verbs.ErrExists):
		hint = "remove it first with: bcship rxe del " + strings.TrimPrefix(ve.Op, "rxe add ")
	case errors.Is(err, context.DeadlineExceeded):
		hint = "the device exists but no RoCE v2 GID appeared; is the netdev's address still there? (bcship rdma devices)"
	}
	if hint == "" {
		return err
	}
	return fmt.Errorf("%w\n  hint: %s", err, hint)
}
