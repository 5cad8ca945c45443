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
	"github.com/bcship/bcship/transport/shm"
	"github.com/bcship/bcship/transport/tcp"
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
	var size, iters, rounds int
	var busy bool
	var transports, poll, congestion string
	cmd := &cobra.Command{
		Use:   "invoke [--size 64] [--iters 20000] [--rounds 3] [--transport both|tcp|shm] [--poll both|netpoll|busy] [--congestion CC]",
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
tcp busy against UCX tcp, shm busy against UCX shm. --poll picks one mode.

A raw busy-polling TCP ping-pong (recvfrom(2) and sendto(2) on the bare
sockets, nothing else) is the floor under any TCP round trip on this host;
the last line shows how far above it the busy rows and UCX over TCP are:
the part that is software rather than the kernel's loopback path.

Busy-polling nodes set their connections' congestion control to reno
unless told otherwise (serve --tcp-congestion; here --congestion): its
per-packet work is the least. Default nodes, the Go ping-pong and UCX keep
the system's. The floor is measured with each algorithm in use, and each
row's distance to the floor is taken with its own.

Every row is measured --rounds times, all rows once per round, and the
table shows medians over the rounds. Ratios are taken within a round and
their median printed with the lowest and highest round: timings on a
shared machine drift between minutes, and rows measured minutes apart
would otherwise compare the drift.`,
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
			return benchInvoke(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(),
				invokeBench{size: size, iters: iters, rounds: rounds, modes: modes, kinds: kinds, congestion: congestion})
		},
	}
	cmd.Flags().IntVar(&size, "size", 64, "argument bytes (at least 32, the chase walk)")
	cmd.Flags().IntVar(&iters, "iters", 20000, "round trips per measurement")
	cmd.Flags().IntVar(&rounds, "rounds", 3, "measure every row this many times, back to back, and print medians")
	cmd.Flags().BoolVar(&busy, "busy-poll", false, "only busy-polling nodes (--poll busy)")
	cmd.Flags().StringVar(&poll, "poll", "both", "both, netpoll (the nodes' default) or busy (--busy-poll nodes)")
	cmd.Flags().StringVar(&transports, "transport", "both", "both, tcp or shm (shared memory)")
	cmd.Flags().StringVar(&congestion, "congestion", "", "the nodes' TCP congestion control, as serve --tcp-congestion (default reno for busy nodes, the system's for others)")
	return cmd
}

// invokePair starts two in-process nodes on one transport kind ("tcp",
// "shm"), node 1 serving the chase region and AM, and returns an invoke
// and an AM round trip from node 0. congestion is their TCPCongestion.
func invokePair(ctx context.Context, kind string, size int, busy bool, congestion string) (invoke, am func() error, closeAll func(), err error) {
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
			TCPCongestion: congestion, SharedMemory: kind == "shm", Logger: quiet})
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
	if kind == "shm" {
		// The rings are set up over the TCP connection, after it: until
		// then frames go over TCP, and a short run would measure that.
		if err := awaitRings(ctx, nodes[0], 1, invoke); err != nil {
			closeAll()
			return nil, nil, nil, err
		}
	}
	return invoke, am, closeAll, nil
}

// awaitRings calls f until n reaches peer over shared memory.
func awaitRings(ctx context.Context, n *bc.Node, peer uint32, f func() error) error {
	tr, ok := n.Transport().(*shm.Transport)
	if !ok {
		return fmt.Errorf("node %d is not on shared memory", n.ID())
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		if err := f(); err != nil {
			return err
		}
		for _, c := range tr.Conns() {
			if c.Peer == peer && c.FramesRecv > 0 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %d: no shared-memory connection to node %d after 10s", n.ID(), peer)
		case <-time.After(time.Millisecond):
		}
	}
}

// measurePair measures the invoke and AM rows of one node pair.
func measurePair(ctx context.Context, o invokeBench, round int, kind string, busy bool,
	measureRow func(round int, name string, f func() error) error) error {
	name := kind
	if busy {
		name += " busy"
	}
	invoke, am, closeAll, err := invokePair(ctx, kind, o.size, busy, o.congestion)
	if err != nil {
		return fmt.Errorf("%s nodes: %w", name, err)
	}
	defer closeAll()
	if err := measureRow(round, "bcship invoke "+name, invoke); err != nil {
		return err
	}
	return measureRow(round, "bcship AM "+name, am)
}

// invokeBench is one bench invoke run.
type invokeBench struct {
	size, iters, rounds int
	modes               []bool   // false: default waiting, true: busy-polling nodes
	kinds               []string // "tcp", "shm"
	congestion          string   // the nodes' TCPCongestion
}

// floorRow names the raw ping-pong row with congestion control cc.
func floorRow(cc string) string { return "raw ping-pong " + cc }

// series is one row of the table: its p50 and p99 in every round (zero
// where the round could not measure it).
type series struct {
	name     string
	p50, p99 []time.Duration
}

func (s *series) set(round int, p50, p99 time.Duration) {
	for len(s.p50) <= round {
		s.p50, s.p99 = append(s.p50, 0), append(s.p99, 0)
	}
	s.p50[round], s.p99[round] = p50, p99
}

// perRound is f of a's and b's p50 in every round that measured both.
func perRound[T any](a, b *series, f func(a, b time.Duration) T) []T {
	var out []T
	for i := range min(len(a.p50), len(b.p50)) {
		if a.p50[i] > 0 && b.p50[i] > 0 {
			out = append(out, f(a.p50[i], b.p50[i]))
		}
	}
	return out
}

// middle sorts xs and returns their median (the mean of the middle two for
// an even count); xs must not be empty.
func middle[T float64 | time.Duration](xs []T) T {
	slices.Sort(xs)
	m := xs[len(xs)/2]
	if len(xs)%2 == 0 {
		m = (xs[len(xs)/2-1] + m) / 2
	}
	return m
}

// roundRatio is a's p50 over b's, the median over the rounds that measured both,
// with the lowest and highest of them.
func roundRatio(a, b *series) (med, lo, hi float64, ok bool) {
	rs := perRound(a, b, func(x, y time.Duration) float64 { return float64(x) / float64(y) })
	if len(rs) == 0 {
		return 0, 0, 0, false
	}
	med = middle(rs)
	return med, rs[0], rs[len(rs)-1], true
}

// median is the median of the measured (non-zero) durations.
func median(ds []time.Duration) time.Duration {
	var m []time.Duration
	for _, d := range ds {
		if d > 0 {
			m = append(m, d)
		}
	}
	if len(m) == 0 {
		return 0
	}
	return middle(m)
}

// benchInvoke measures every row once per round, rounds back to back, and
// prints each row's medians. A ratio is taken within each round, between
// rows measured a few seconds apart, and its median printed: this machine's
// speed drifts by tens of percent from one minute to the next, which a
// single pass would read as a difference between the rows.
func benchInvoke(ctx context.Context, w, progress io.Writer, o invokeBench) error {
	if o.size < chase.Size || o.iters < 100 || o.rounds < 1 {
		return fmt.Errorf("bench: --size must be at least %d, --iters at least 100, --rounds at least 1", chase.Size)
	}
	// The congestion control of the busy nodes' connections, the default
	// nodes' and the system's (UCX's, the Go ping-pong's): the floor is
	// measured with each distinct one.
	system, err := tcp.DefaultCongestion()
	if err != nil {
		return err
	}
	ccOf := func(busy bool) string {
		if cc := tcp.CongestionFor(o.congestion, busy); cc != "" {
			return cc
		}
		return system
	}
	busyCC, netpollCC := ccOf(true), ccOf(false)
	floors := []string{busyCC}
	for _, cc := range []string{netpollCC, system} {
		if !slices.Contains(floors, cc) {
			floors = append(floors, cc)
		}
	}
	goTCP, closeTCP, err := tcpPingPong(o.size)
	if err != nil {
		return err
	}
	defer closeTCP()
	var rows []*series
	row := func(name string) *series {
		for _, s := range rows {
			if s.name == name {
				return s
			}
		}
		s := &series{name: name}
		rows = append(rows, s)
		return s
	}
	measureRow := func(round int, name string, f func() error) error {
		lat, err := measure(f, o.iters)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		row(name).set(round, lat[len(lat)/2], lat[len(lat)*99/100])
		return nil
	}
	var ucxNote []string
	for round := range o.rounds {
		if o.rounds > 1 {
			fmt.Fprintf(progress, "round %d/%d\n", round+1, o.rounds)
		}
		if err := measureRow(round, "go tcp ping-pong", goTCP); err != nil {
			return err
		}
		for _, cc := range floors {
			set := cc
			if cc == system {
				set = "" // what a new socket has; qemu-user cannot set some names
			}
			floor, closeFloor, err := rawPingPong(o.size, set)
			if err != nil {
				return fmt.Errorf("%s: %w", floorRow(cc), err)
			}
			err = measureRow(round, floorRow(cc), floor)
			closeFloor()
			if err != nil {
				return err
			}
		}
		// One pair at a time: the idle pair's loops would compete for the
		// CPUs. UCX over a transport runs right after our rows over it, so
		// the like-for-like ratio compares rows seconds apart, not a minute.
		noUCX := false
		for _, kind := range []string{"tcp", "shm"} {
			if slices.Contains(o.kinds, kind) {
				for _, busy := range o.modes {
					if err := measurePair(ctx, o, round, kind, busy, measureRow); err != nil {
						return err
					}
				}
			}
			// UCX's active-message latency, when ucx_perftest is installed:
			// the goal is a cached invoke no slower than ucp_am_lat's
			// round trip. Left to itself UCX uses shared memory on one host.
			if noUCX {
				continue
			}
			name, tls := "ucx ucp_am_lat "+kind, kind
			if kind == "shm" {
				tls = ""
			}
			r, err := ucxAMLatency(ctx, o.size, o.iters, tls)
			switch {
			case errors.Is(err, errNoUCX):
				noUCX = true
				if round == 0 {
					ucxNote = append(ucxNote, fmt.Sprintf("%-22s not run: %v", "ucx ucp_am_lat", err))
				}
			case err != nil:
				// A baseline that failed (on a loaded machine ucx_perftest
				// can outlast its minute) leaves our figures standing.
				msg, _, _ := strings.Cut(err.Error(), "\n")
				ucxNote = append(ucxNote, fmt.Sprintf("%-22s failed in round %d: %s", name, round+1, msg))
			default:
				row(name).set(round, 2*r.oneWay, 0)
			}
		}
	}

	how := "one round"
	if o.rounds > 1 {
		how = fmt.Sprintf("%d rounds of every row back to back; medians over the rounds, ratios [lowest–highest round]", o.rounds)
	}
	fmt.Fprintf(w, "%d round trips of %d bytes per row, 2 nodes in this process; %s\n", o.iters, o.size, how)
	fmt.Fprintf(w, "TCP congestion control: busy nodes %s, default nodes %s, the Go ping-pong and UCX %s (the system's)\n", busyCC, netpollCC, system)
	span := func(med, lo, hi float64) string {
		if o.rounds == 1 {
			return fmt.Sprintf("%.2fx", med)
		}
		return fmt.Sprintf("%.2fx [%.2f–%.2f]", med, lo, hi)
	}
	var base *series
	var ours, ucx []*series
	for _, s := range rows {
		if strings.HasPrefix(s.name, "ucx ") {
			ucx = append(ucx, s)
			continue
		}
		line := fmt.Sprintf("%-22s p50 %8v  p99 %8v", s.name, median(s.p50).Round(100*time.Nanosecond), median(s.p99).Round(100*time.Nanosecond))
		if base == nil {
			base = s
		} else if m, lo, hi, ok := roundRatio(s, base); ok {
			line += "  " + span(m, lo, hi) + " go tcp"
		}
		if strings.HasPrefix(s.name, "bcship invoke ") {
			ours = append(ours, s)
		}
		fmt.Fprintln(w, line)
	}
	for _, s := range ucx {
		line := fmt.Sprintf("%-22s p50 %8v  (round trip: 2x its one-way p50)", s.name, median(s.p50).Round(100*time.Nanosecond))
		for _, n := range ours {
			if m, lo, hi, ok := roundRatio(n, s); ok {
				line += fmt.Sprintf("  %s/ucx %s", strings.TrimPrefix(n.name, "bcship "), span(m, lo, hi))
			}
		}
		fmt.Fprintln(w, line)
	}
	for _, n := range ucxNote {
		fmt.Fprintln(w, n)
	}
	// What each busy TCP round trip spends above the kernel's own loopback
	// round trip (the raw ping-pong with the same congestion control): the
	// part that is software, ours or UCX's.
	var above []string
	for _, r := range []struct{ name, cc string }{
		{"bcship invoke tcp busy", busyCC}, {"bcship AM tcp busy", busyCC}, {"ucx ucp_am_lat tcp", system},
	} {
		ds := perRound(row(r.name), row(floorRow(r.cc)), func(x, y time.Duration) time.Duration { return x - y })
		if len(ds) > 0 {
			above = append(above, fmt.Sprintf("%s +%v (%s)", strings.TrimPrefix(r.name, "bcship "), middle(ds).Round(100*time.Nanosecond), r.cc))
		}
	}
	if len(above) > 1 {
		fmt.Fprintf(w, "above the raw ping-pong with the same congestion control (the kernel's loopback floor): %s\n", strings.Join(above, ", "))
	}
	return nil
}

// warmUpFor is the least time a row warms up: a pair just started still
// has loops spinning from its handshake and code shipping for a few ms,
// which a short run (--iters in the hundreds) would measure.
const warmUpFor = 30 * time.Millisecond

func measure(f func() error, iters int) ([]time.Duration, error) {
	// Warm up (connections, caches): iters/10 calls, and warmUpFor.
	for i, t0 := 0, time.Now(); i < iters/10 || time.Since(t0) < warmUpFor; i++ {
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
