package main

import (
	"context"
	"crypto/ed25519"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	bc "github.com/bcship/bcship"
	"github.com/bcship/bcship/xrdma"
	"github.com/spf13/cobra"
)

// xop describes one X-RDMA operation for the bench verbs: what its size
// axis is called and how to prepare it.
type xop struct {
	name     string
	sizeFlag string // --hops, --chain, --count
	sizeName string // column header and plot axis
	sizes    []int  // default sizes
	dataFlag string // --elems, --entries, --values
	dataDef  int
	dataHelp string
	long     string
}

var xops = map[string]xop{
	"chase": {
		name: "chase", sizeFlag: "hops", sizeName: "hops", sizes: []int{16, 64, 256, 1024},
		dataFlag: "elems", dataDef: 4096, dataHelp: "list elements, spread over the data nodes at random",
		long: `chase walks a linked list whose elements are spread over the data nodes at
random (seeded); "hops" is the number of links followed per walk. GET reads
each element from the origin (one round trip per link); AM and shipped walks
forward themselves from node to node and reply to the origin. A walk longer
than 256 links runs as segments of 256 (the TTL is one byte on the wire).`,
	},
	"lookup": {
		name: "lookup", sizeFlag: "chain", sizeName: "chain", sizes: []int{1, 4, 16, 64},
		dataFlag: "entries", dataDef: 16384, dataHelp: "hash-table entries over all data nodes",
		long: `lookup searches a chained hash table spread over the data nodes; "chain" is
the average chain length (entries per bucket). GET reads the bucket and then
each entry of the chain from the origin; AM and shipped lookups run at the
key's owner and walk the chain there. One key in eight is absent.`,
	},
	"gather": {
		name: "gather", sizeFlag: "count", sizeName: "count", sizes: []int{16, 64, 256, 1024},
		dataFlag: "values", dataDef: 65536, dataHelp: "64-bit values per data node",
		long: `gather fetches "count" values at random indices spread over the data nodes.
GET sends one GET per index (64 outstanding at a time); AM and shipped send
one call per owner, all at once, and each owner replies with its values.`,
	},
}

type xbenchOptions struct {
	op         xop
	nodes      int
	sizes      []int
	iters      int
	cold       int
	inflight   int
	seed       uint64
	maxTime    time.Duration
	transport  string
	rdmaDev    string // --transport rdma: the device every node uses
	format     string
	csv, plot  string
	data       int
	busy       bool
	sizesSet   bool // the sizes flag was given: --format seed keeps them
	procs      bool
	netns      bool
	nodeBinary string // --procs: the binary to run data nodes with
}

func newBenchXRDMA(name string) *cobra.Command {
	o := xbenchOptions{op: xops[name]}
	cmd := &cobra.Command{
		Use:   name + " [--nodes 4] [--" + o.op.sizeFlag + " …] [--iters N] [--csv out.csv] [--plot out.png]",
		Short: "X-RDMA " + name + ": GET-driven vs active message vs shipped code",
		Long: o.op.long + `

Each data node runs in its own process (--in-process: all in this one):
data nodes 0…N-1 and an origin (node N, no data) on loopback TCP. With
--transport rdma --rdma-dev DEV every node runs on the RDMA transport over
DEV (e.g. soft-RoCE rxe0; all nodes on the one device): AM and shipped
messages go over RC queue pairs and each GET is a one-sided RDMA READ (no
code runs at the data node). Every answer of every mode is checked against one
computed in Go. The table shows p50/p99 latency per operation for GET, AM and
shipped (warm: code cached on every node), shipped cold (each run ships new
code, so it pays for the transfer and the loading), and the ratios
GET/shipped and shipped/AM from the p50s. The modes take turns run by run,
so noise falls on all of them alike.

--inflight K keeps K operations outstanding (throughput: ops/s per mode).
--format seed runs sizes 1…4096 in powers of two (unless the sizes are
given) with 2^23/size iterations each (capped by --max-time) and writes the
CSV as mode,servers,iterations,depth,chases_per_s, the shape of the
published pointer-chase benchmark.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.sizesSet = cmd.Flags().Changed(o.op.sizeFlag)
			return runXBench(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), o)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.nodes, "nodes", 4, "data nodes")
	f.IntSliceVar(&o.sizes, o.op.sizeFlag, o.op.sizes, o.op.sizeName+" to measure")
	f.IntVar(&o.iters, "iters", 200, "measured runs per mode and size")
	f.IntVar(&o.cold, "cold", 5, "cold shipped runs per size (each ships new code)")
	f.IntVar(&o.inflight, "inflight", 1, "runs outstanding at once (throughput mode)")
	f.Uint64Var(&o.seed, "seed", 1, "seed of the random placement")
	f.DurationVar(&o.maxTime, "max-time", 20*time.Second, "time limit per size (0: none)")
	f.StringVar(&o.transport, "transport", "tcp", "transport between nodes: tcp, or rdma (needs --rdma-dev)")
	f.StringVar(&o.rdmaDev, "rdma-dev", "", "RDMA device for --transport rdma (e.g. rxe0; see bcship rdma devices)")
	f.StringVar(&o.format, "format", "table", `"table", or "seed": sizes 1…4096, 2^23/size iterations, seed-shaped CSV`)
	f.StringVar(&o.csv, "csv", "", "write the results as CSV to this file")
	f.StringVar(&o.plot, "plot", "", "write a PNG of p50 latency vs "+o.op.sizeName+" to this file")
	f.IntVar(&o.data, o.op.dataFlag, o.op.dataDef, o.op.dataHelp)
	f.BoolVar(&o.busy, "busy-poll", false, "nodes busy-poll their sockets")
	f.BoolVar(&o.procs, "procs", true, "run each data node in its own process (restarted for every size); --procs=false or --in-process keeps the cluster in this process (less scheduler noise on few cores)")
	f.BoolFunc("in-process", "same as --procs=false", func(string) error { o.procs = false; return nil })
	f.BoolVar(&o.netns, "netns", false, "with --procs implied: each data node in its own network namespace, joined by veths and a bridge (root)")
	f.StringVar(&o.nodeBinary, "node-binary", "", "with --procs: the bcship binary to run data nodes with (default this one)")
	f.MarkHidden("node-binary")
	return cmd
}

// xpoint is the measurement at one size.
type xpoint struct {
	size    int
	iters   int // planned
	samples map[xrdma.Mode]*xrdma.Sample
}

func (o *xbenchOptions) validate() error {
	switch {
	case o.transport == "rdma" && o.rdmaDev == "":
		return fmt.Errorf("bench %s: --transport rdma needs --rdma-dev (see bcship rdma devices)", o.op.name)
	case o.transport == "rdma" && o.netns:
		return fmt.Errorf("bench %s: --transport rdma with --netns is not supported (the nodes share one RDMA device)", o.op.name)
	case o.transport == "tcp" && o.rdmaDev != "":
		return fmt.Errorf("bench %s: --rdma-dev needs --transport rdma", o.op.name)
	case o.transport != "tcp" && o.transport != "rdma":
		return fmt.Errorf("bench %s: unknown --transport %q (tcp, rdma)", o.op.name, o.transport)
	case o.format != "table" && o.format != "seed":
		return fmt.Errorf("bench %s: unknown --format %q (table, seed)", o.op.name, o.format)
	case o.nodes < 1 || o.nodes > 64:
		return fmt.Errorf("bench %s: --nodes must be 1-64", o.op.name)
	case o.iters < 1 || o.inflight < 1 || o.cold < 0 || o.data < 1:
		return fmt.Errorf("bench %s: --iters, --inflight and --%s must be positive, --cold not negative", o.op.name, o.op.dataFlag)
	}
	if o.format == "seed" && !o.sizesSet {
		o.sizes = nil
		for d := 1; d <= 4096; d *= 2 {
			o.sizes = append(o.sizes, d)
		}
	}
	if len(o.sizes) == 0 {
		return fmt.Errorf("bench %s: no --%s", o.op.name, o.op.sizeFlag)
	}
	for _, s := range o.sizes {
		if s < 1 {
			return fmt.Errorf("bench %s: --%s %d: sizes must be positive", o.op.name, o.op.sizeFlag, s)
		}
		if o.op.name == "lookup" && s > o.data/o.nodes {
			return fmt.Errorf("bench lookup: --chain %d is longer than the %d entries per node (--entries %d over %d nodes)", s, o.data/o.nodes, o.data, o.nodes)
		}
	}
	return nil
}

func runXBench(ctx context.Context, w, progress io.Writer, o xbenchOptions) error {
	if err := o.validate(); err != nil {
		return err
	}
	// Data-node processes write their stderr from other goroutines, and
	// w and progress may be one buffer.
	var mu sync.Mutex
	w, progress = &syncWriter{mu: &mu, w: w}, &syncWriter{mu: &mu, w: progress}
	t0 := time.Now()
	logger := slog.New(slog.NewTextHandler(progress, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var env xenv
	var err error
	where, link := "in this process", "loopback TCP"
	if o.transport == "rdma" {
		link = "RDMA on " + o.rdmaDev + " (GET = one-sided RDMA READ; control over loopback TCP)"
	}
	if o.netns {
		o.procs = true
		link = "TCP over veth and a bridge"
	}
	if o.procs {
		env, err = newProcEnv(o, logger, progress)
		where = "each in its own process"
		if o.netns {
			where = "each in its own process and network namespace"
		}
	} else {
		env, err = newLocalEnv(ctx, o, logger)
	}
	if err != nil {
		return err
	}
	defer env.close()
	code, err := xrdma.LoadCode(o.op.name, env.key())
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%s: %d data nodes + origin, %s, %s; %s; seed %d\n", o.op.name, o.nodes, where, link, xdesc(o), o.seed)
	var pts []xpoint
	for k, size := range o.sizes {
		set, err := newXSet(o, size)
		if err != nil {
			return err
		}
		origin, err := env.at(ctx, size, set)
		if err != nil {
			return err
		}
		op, err := set.op(ctx, origin, code, size)
		if err != nil {
			return err
		}
		iters := o.iters
		if o.format == "seed" {
			iters = max(1, (1<<23)/size)
		}
		if err := env.settle(ctx, set); err != nil {
			return fmt.Errorf("%s %s %d: %w", o.op.name, o.op.sizeName, size, err)
		}
		// The three answers must agree before anything is timed.
		for _, m := range xrdma.Modes {
			f0, counted := env.framesRecv()
			if err := op.Run(ctx, m, 0); err != nil {
				return fmt.Errorf("%s %s %d: %w", o.op.name, o.op.sizeName, size, err)
			}
			if f1, _ := env.framesRecv(); counted && m == xrdma.GET && o.transport == "rdma" {
				fmt.Fprintf(w, "%s %d: GET run checked, data nodes received %d frames (one-sided READs)\n", o.op.sizeName, size, f1-f0)
			}
		}
		fmt.Fprintf(w, "%s %d: GET, AM and shipped agree with Go\n", o.op.sizeName, size)
		ts := time.Now()
		label := fmt.Sprintf("%s %s %d (%d/%d)", o.op.name, o.op.sizeName, size, k+1, len(o.sizes))
		ss, err := xrdma.Measure(ctx, op, xrdma.MeasureConfig{
			Iters: iters, Inflight: o.inflight, MaxTime: o.maxTime, Cold: o.cold, Code: code, Origin: origin,
			Progress: func(done, total int) {
				fmt.Fprintf(progress, "%s: %d/%d runs per mode, %v\n", label, done, total, time.Since(ts).Round(100*time.Millisecond))
			},
		})
		if err != nil {
			return fmt.Errorf("%s %s %d: %w", o.op.name, o.op.sizeName, size, err)
		}
		fmt.Fprintf(progress, "%s: done, %d runs per mode in %v\n", label, ss[xrdma.GET].N(), time.Since(ts).Round(100*time.Millisecond))
		pts = append(pts, xpoint{size: size, iters: iters, samples: ss})
	}
	xtable(w, o, pts)
	if o.csv != "" {
		if err := xwriteCSV(o, pts); err != nil {
			return err
		}
		fmt.Fprintf(w, "wrote %s\n", o.csv)
	}
	if o.plot != "" {
		if err := xplot(o, pts); err != nil {
			return err
		}
		fmt.Fprintf(w, "wrote %s\n", o.plot)
	}
	fmt.Fprintf(progress, "%s: finished in %v\n", o.op.name, time.Since(t0).Round(100*time.Millisecond))
	return nil
}

func xdesc(o xbenchOptions) string {
	switch o.op.name {
	case "chase":
		return fmt.Sprintf("%d-element list", o.data)
	case "lookup":
		return fmt.Sprintf("%d entries, 256 keys (1 in 8 absent)", o.data)
	}
	return fmt.Sprintf("%d values per node, 16 index sets per count", o.data)
}

// xset is an operation's data at one size. Built from the options alone
// (seeded), it is the same in every process: the origin computes the
// answers from it, and data nodes in other processes (--procs) build it
// again to install their part.
type xset struct {
	o     xbenchOptions
	list  *xrdma.ChaseList
	table *xrdma.HashTable
	vals  *xrdma.GatherData
}

func newXSet(o xbenchOptions, size int) (*xset, error) {
	ids := make([]uint32, o.nodes)
	for i := range ids {
		ids[i] = uint32(i)
	}
	s := &xset{o: o}
	var err error
	switch o.op.name {
	case "chase":
		s.list, err = xrdma.NewChaseList(ids, o.data, o.seed)
	case "lookup":
		s.table, err = xrdma.NewHashTable(o.nodes, o.data, size, o.seed)
	case "gather":
		s.vals, err = xrdma.NewGatherData(ids, o.data, o.seed)
	default:
		err = errors.New("BUG: unknown operation " + o.op.name)
	}
	return s, err
}

// region is the name of the region the operation reads.
func (s *xset) region() string {
	switch {
	case s.list != nil:
		return xrdma.ChaseRegion
	case s.table != nil:
		return xrdma.LookupRegion
	}
	return xrdma.GatherRegion
}

// install registers the parts of ts.
func (s *xset) install(ts []xrdma.Target) error {
	switch {
	case s.list != nil:
		return s.list.Install(ts)
	case s.table != nil:
		return s.table.Install(ts)
	}
	return s.vals.Install(ts)
}

// op is the operation at size, run from origin.
func (s *xset) op(ctx context.Context, origin *bc.Node, code *xrdma.Code, size int) (xrdma.Op, error) {
	switch {
	case s.list != nil:
		return xrdma.NewChase(origin, code, s.list, size)
	case s.table != nil:
		return xrdma.NewLookup(ctx, origin, code, s.table, s.table.Keys(256, s.o.seed))
	}
	sets := make([][]xrdma.Ref, 16)
	for i := range sets {
		sets[i] = s.vals.Refs(size, s.o.seed+uint64(i))
	}
	return xrdma.NewGather(origin, code, s.vals, sets)
}

// xenv is where a benchmark runs: data nodes 0…N-1 and an origin.
type xenv interface {
	// key signs the code the origin ships; the data nodes trust it.
	key() ed25519.PrivateKey
	// at makes the data nodes hold set (at size) and returns the origin.
	at(ctx context.Context, size int, set *xset) (*bc.Node, error)
	// settle waits, on RDMA, until the origin reads set's region one-sided
	// on every data node (the region table travels asynchronously).
	settle(ctx context.Context, set *xset) error
	// framesRecv is the data nodes' received frames, when this process
	// can see them.
	framesRecv() (uint64, bool)
	close() error
}

// localEnv is an in-process cluster (xrdma.Cluster), kept for every size.
type localEnv struct {
	c    *xrdma.Cluster
	rdma bool
}

func newLocalEnv(ctx context.Context, o xbenchOptions, logger *slog.Logger) (*localEnv, error) {
	cfg := xrdma.ClusterConfig{Nodes: o.nodes, BusyPoll: o.busy, Logger: logger}
	if o.transport == "rdma" {
		cfg.RDMADevice = o.rdmaDev
	}
	c, err := xrdma.StartCluster(ctx, cfg)
	if err != nil {
		return nil, err
	}
	am, err := xrdma.LoadCode(o.op.name, nil)
	if err == nil {
		err = am.InstallAM(c.Targets())
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return &localEnv{c: c, rdma: cfg.RDMADevice != ""}, nil
}

func (e *localEnv) key() ed25519.PrivateKey { return e.c.Key }
func (e *localEnv) close() error            { return e.c.Close() }

func (e *localEnv) at(_ context.Context, _ int, set *xset) (*bc.Node, error) {
	return e.c.Origin, set.install(e.c.Targets())
}

func (e *localEnv) settle(ctx context.Context, set *xset) error {
	if !e.rdma {
		return nil
	}
	return e.c.WaitOneSided(ctx, set.region())
}

func (e *localEnv) framesRecv() (uint64, bool) { return e.c.FramesRecv(), true }

// Targets of issue 7, for the chase at 256 hops and more, warm.
const (
	targetGetShipped = 1.7
	goalGetShipped   = 2.0
	targetShippedAM  = 1.10
	goalShippedAM    = 1.05
	targetColdWarm   = 3.0
)

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func xtable(w io.Writer, o xbenchOptions, pts []xpoint) {
	fmt.Fprintf(w, "latency per %s, p50 / p99; ratios from the p50s", o.op.name)
	if o.inflight > 1 {
		fmt.Fprintf(w, "; %d in flight, throughput in ops/s", o.inflight)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	hdr := []string{o.op.sizeName, "runs", "GET", "AM", "shipped", "shipped cold", "GET/shipped", "shipped/AM", "cold/warm"}
	if o.inflight > 1 {
		hdr = append(hdr, "GET/s", "AM/s", "shipped/s", "shipped/GET")
	}
	fmt.Fprintln(tw, strings.Join(hdr, "\t")+"\t")
	for _, p := range pts {
		g, a, s, cold := p.samples[xrdma.GET], p.samples[xrdma.AM], p.samples[xrdma.Shipped], p.samples[xrdma.Cold]
		row := []string{strconv.Itoa(p.size), strconv.Itoa(g.N()), pq(g), pq(a), pq(s), pq(cold),
			fmt.Sprintf("%.2f×", ratio(g.P50(), s.P50())), fmt.Sprintf("%.2f×", ratio(s.P50(), a.P50())), "-"}
		if cold != nil {
			row[8] = fmt.Sprintf("%.2f×", ratio(cold.P50(), s.P50()))
		}
		if o.inflight > 1 {
			row = append(row, fmt.Sprintf("%.0f", g.PerSecond()), fmt.Sprintf("%.0f", a.PerSecond()),
				fmt.Sprintf("%.0f", s.PerSecond()), fmt.Sprintf("%.2f×", s.PerSecond()/g.PerSecond()))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	tw.Flush()
	if o.op.name == "chase" {
		xtargets(w, pts)
	}
}

// xtargets prints the measured ratios next to the targets, at the sizes
// they are stated for (256 hops and more).
func xtargets(w io.Writer, pts []xpoint) {
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	shown := false
	for _, p := range pts {
		if p.size < 256 {
			continue
		}
		shown = true
		g, a, s, cold := p.samples[xrdma.GET], p.samples[xrdma.AM], p.samples[xrdma.Shipped], p.samples[xrdma.Cold]
		gs, sa := ratio(g.P50(), s.P50()), ratio(s.P50(), a.P50())
		line := fmt.Sprintf("targets at %d hops: GET/shipped %.2f× (≥ %.1f×, goal %.1f×: %s); shipped/AM %.2f× (≤ %.2f×, goal %.2f×: %s)",
			p.size, gs, targetGetShipped, goalGetShipped, verdict(gs >= targetGetShipped),
			sa, targetShippedAM, goalShippedAM, verdict(sa <= targetShippedAM))
		if cold != nil {
			cw := ratio(cold.P50(), s.P50())
			line += fmt.Sprintf("; cold/warm %.2f× (≤ %.0f×: %s)", cw, targetColdWarm, verdict(cw <= targetColdWarm))
		}
		fmt.Fprintln(w, line)
	}
	if !shown {
		fmt.Fprintln(w, "targets (GET/shipped ≥ 1.7×, shipped/AM ≤ 1.10×, cold ≤ 3× warm) are stated for 256 hops and more: none measured")
	}
}

// pq formats a sample's p50 / p99.
func pq(s *xrdma.Sample) string {
	if s == nil {
		return "-"
	}
	return fmtDur(s.P50()) + " / " + fmtDur(s.P99())
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/1e6)
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.1fµs", float64(d)/1e3)
}

func xwriteCSV(o xbenchOptions, pts []xpoint) (err error) {
	f, err := os.Create(o.csv)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	cw := csv.NewWriter(f)
	modes := append(slices.Clone(xrdma.Modes), xrdma.Cold)
	if o.format == "seed" {
		cw.Write([]string{"mode", "servers", "iterations", "depth", "chases_per_s"})
		for _, p := range pts {
			for _, m := range xrdma.Modes {
				s := p.samples[m]
				cw.Write([]string{m.String(), strconv.Itoa(o.nodes), strconv.Itoa(s.N()), strconv.Itoa(p.size),
					strconv.FormatFloat(s.PerSecond(), 'f', 1, 64)})
			}
		}
	} else {
		cw.Write([]string{"op", o.op.sizeName, "mode", "servers", "inflight", "iterations", "p50_us", "p99_us", "mean_us", "ops_per_s"})
		us := func(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e3, 'f', 2, 64) }
		for _, p := range pts {
			for _, m := range modes {
				s := p.samples[m]
				if s == nil {
					continue
				}
				cw.Write([]string{o.op.name, strconv.Itoa(p.size), m.String(), strconv.Itoa(o.nodes), strconv.Itoa(s.Inflight),
					strconv.Itoa(s.N()), us(s.P50()), us(s.P99()), us(s.Mean()), strconv.FormatFloat(s.PerSecond(), 'f', 1, 64)})
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// syncWriter serializes writes to w.
type syncWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
