package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	bc "github.com/bcship/bcship"
	"github.com/bcship/bcship/internal/chase"
	"github.com/spf13/cobra"
)

func newBench() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure bcship against baselines from the same run",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newBenchInvoke())
	cmd.AddCommand(newBenchXRDMA("chase"), newBenchXRDMA("lookup"), newBenchXRDMA("gather"), newBenchNode())
	return cmd
}

func newBenchInvoke() *cobra.Command {
	var size, iters int
	var busy bool
	var transports, poll string
	cmd := &cobra.Command{
		Use:   "invoke [--size 64] [--iters 20000] [--transport both|tcp|shm] [--poll both|netpoll|busy]",
		Short: "Cached-invoke round trip between two nodes, over TCP and shared memory, vs Go TCP and UCX",
		Long: `invoke measures the round trip of a cached invocation (the code is shipped
once, then only its hash travels) between two in-process nodes, with the
embedded chase kernel replying at once, next to a predeployed active
message (AM) and a plain Go TCP ping-pong of the same size measured in the
same run. It runs the pair over loopback TCP and over shared memory
(transport/shm, what co-located nodes use with serve --shm) unless
--transport picks one, and prints p50 and p99 and the ratios. When
ucx_perftest is installed (Debian: ucx-utils) it also runs UCX's ucp_am_lat
in the same run, over TCP (UCX_TLS=tcp) and over UCX's own choice (shared
memory on one host), and prints their round trips with invoke/ucx for each
of our transports.

Each transport runs twice: with the nodes' default waiting (TCP read loops
block in the netpoller, shared-memory loops sleep after a few µs) and with
--busy-poll nodes ("busy" rows: loops spin, and a waiting caller reads its
answer itself). ucx_perftest busy-polls, so like for like is the busy rows:
tcp busy against UCX tcp, shm busy against UCX shm. --poll picks one mode.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var kinds []string
			switch transports {
			case "both":
				kinds = []string{"tcp", "shm"}
			case "tcp", "shm":
				kinds = []string{transports}
			default:
				return fmt.Errorf("bench: --transport %q: want both, tcp or shm", transports)
			}
			var modes []bool
			switch {
			case busy || poll == "busy":
				modes = []bool{true}
			case poll == "netpoll":
				modes = []bool{false}
			case poll == "both":
				modes = []bool{false, true}
			default:
				return fmt.Errorf("bench: --poll %q: want both, netpoll or busy", poll)
			}
			return benchInvoke(cmd.Context(), cmd.OutOrStdout(), size, iters, modes, kinds)
		},
	}
	cmd.Flags().IntVar(&size, "size", 64, "argument bytes (at least 32, the chase walk)")
	cmd.Flags().IntVar(&iters, "iters", 20000, "round trips per measurement")
	cmd.Flags().BoolVar(&busy, "busy-poll", false, "only busy-polling nodes (--poll busy)")
	cmd.Flags().StringVar(&poll, "poll", "both", "both, netpoll (the nodes' default) or busy (--busy-poll nodes)")
	cmd.Flags().StringVar(&transports, "transport", "both", "both, tcp or shm (shared memory)")
	return cmd
}

// invokePair starts two in-process nodes on one transport kind ("tcp",
// "shm"), node 1 serving the chase region and AM, and returns an invoke
// and an AM round trip from node 0.
func invokePair(ctx context.Context, kind string, size int, busy bool) (invoke, am func() error, closeAll func(), err error) {
	code, pub, err := demoCode()
	if err != nil {
		return nil, nil, nil, err
	}
	quiet := slog.New(slog.DiscardHandler)
	var nodes [2]*bc.Node
	closeAll = func() {
		for _, n := range nodes {
			if n != nil {
				n.Close()
			}
		}
	}
	for i := range nodes {
		n, err := bc.NewNode(bc.Config{ID: uint32(i), Listen: "127.0.0.1:0", Trust: []ed25519.PublicKey{pub}, BusyPoll: busy,
			SharedMemory: kind == "shm", Logger: quiet})
		if err == nil {
			err = n.Start(ctx)
		}
		if err != nil {
			closeAll()
			return nil, nil, nil, err
		}
		nodes[i] = n
	}
	nodes[0].SetPeer(1, nodes[1].Addr().String())
	l := chase.New([]uint32{1}, 16, 1)
	nodes[1].RegisterRegion("chase", l.Regions[1])
	if err := nodes[1].RegisterAM("chase", code, "chase"); err != nil {
		closeAll()
		return nil, nil, nil, err
	}
	arg := make([]byte, size)
	copy(arg, chase.Walk{Key: l.Head}.Bytes()) // remaining 0: reply at once
	invoke = func() error { _, err := nodes[0].Invoke(ctx, 1, code, "chase", arg); return err }
	am = func() error { _, err := nodes[0].CallAM(ctx, 1, "chase", arg); return err }
	return invoke, am, closeAll, nil
}

func benchInvoke(ctx context.Context, w io.Writer, size, iters int, modes []bool, kinds []string) error {
	if size < chase.Size || iters < 100 {
		return fmt.Errorf("bench: --size must be at least %d and --iters at least 100", chase.Size)
	}
	tcp, closeTCP, err := tcpPingPong(size)
	if err != nil {
		return err
	}
	defer closeTCP()
	fmt.Fprintf(w, "%d round trips of %d bytes on one host, 2 nodes in this process\n", iters, size)
	var base time.Duration
	row := func(name string, f func() error) (time.Duration, error) {
		lat, err := measure(f, iters)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
		ratio := ""
		if base == 0 {
			base = p50
		} else {
			ratio = fmt.Sprintf("  %.2fx tcp", float64(p50)/float64(base))
		}
		fmt.Fprintf(w, "%-22s p50 %8v  p99 %8v%s\n", name, p50.Round(100*time.Nanosecond), p99.Round(100*time.Nanosecond), ratio)
		return p50, nil
	}
	if _, err := row("go tcp ping-pong", tcp); err != nil {
		return err
	}
	// One pair at a time: the idle pair's loops would compete for the CPUs.
	invokeP50 := map[string]time.Duration{}
	var names []string
	for _, kind := range kinds {
		for _, busy := range modes {
			name := kind
			if busy {
				name += " busy"
			}
			invoke, am, closeAll, err := invokePair(ctx, kind, size, busy)
			if err != nil {
				return fmt.Errorf("%s nodes: %w", name, err)
			}
			p50, err := row("bcship invoke "+name, invoke)
			if err == nil {
				invokeP50[name] = p50
				names = append(names, name)
				_, err = row("bcship AM "+name, am)
			}
			closeAll()
			if err != nil {
				return err
			}
		}
	}
	// UCX's active-message latency, when ucx_perftest is installed: the
	// issue's goal is a cached invoke no slower than ucp_am_lat's round trip.
	for _, tls := range []string{"tcp", ""} {
		r, err := ucxAMLatency(ctx, size, iters, tls)
		if errors.Is(err, errNoUCX) {
			fmt.Fprintf(w, "ucx ucp_am_lat         not run: %v\n", err)
			break
		}
		name := "ucx ucp_am_lat tcp"
		if tls == "" {
			name = "ucx ucp_am_lat shm"
		}
		if err != nil {
			// A baseline that failed (on a loaded machine ucx_perftest
			// can outlast its minute) leaves our figures standing.
			msg, _, _ := strings.Cut(err.Error(), "\n")
			fmt.Fprintf(w, "%-22s failed: %s\n", name, msg)
			continue
		}
		rtt := 2 * r.oneWay
		ratios := ""
		for _, n := range names {
			ratios += fmt.Sprintf("  invoke %s/ucx %.2fx", n, float64(invokeP50[n])/float64(rtt))
		}
		fmt.Fprintf(w, "%-22s p50 %8v  (round trip: 2x its one-way p50)%s\n", name, rtt.Round(100*time.Nanosecond), ratios)
	}
	return nil
}

func measure(f func() error, iters int) ([]time.Duration, error) {
	for range iters / 10 { // warm up: connections, caches
		if err := f(); err != nil {
			return nil, err
		}
	}
	lat := make([]time.Duration, iters)
	for i := range lat {
		t0 := time.Now()
		if err := f(); err != nil {
			return nil, err
		}
		lat[i] = time.Since(t0)
	}
	slices.Sort(lat)
	return lat, nil
}

// tcpPingPong is the baseline: an echo server and one round trip of size
// bytes per call, on a persistent loopback connection.
func tcpPingPong(size int) (func() error, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, size)
		for {
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	buf := make([]byte, size)
	f := func() error {
		if _, err := c.Write(buf); err != nil {
			return err
		}
		_, err := io.ReadFull(c, buf)
		return err
	}
	return f, func() { c.Close(); ln.Close() }, nil
}
