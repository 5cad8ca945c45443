package bcship

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/bcship/bcship/internal/chase"
)

// BenchmarkInvoke is a cached invocation round trip between two loopback
// nodes, next to the same kernel as an active message.
func BenchmarkInvoke(b *testing.B) { benchInvoke(b, nil) }

// BenchmarkInvokeShm is BenchmarkInvoke over shared memory, where the
// transport costs little and the node's own share of a round trip shows.
func BenchmarkInvokeShm(b *testing.B) {
	benchInvoke(b, func(c *Config) { c.SharedMemory = true })
}

// BenchmarkInvokeBusy is BenchmarkInvoke with busy-polling nodes: callers
// read their answers from the socket themselves (transport/tcp Drive).
func BenchmarkInvokeBusy(b *testing.B) {
	benchInvoke(b, func(c *Config) { c.BusyPoll = true })
}

func benchInvoke(b *testing.B, mod func(*Config)) {
	benchRoundTrips(b, cluster(b, []uint32{1, 2}, mod))
}

// benchRoundTrips measures node 1 calling node 2: a cached invoke, the
// same by hash, and the same kernel as an active message.
func benchRoundTrips(b *testing.B, nodes map[uint32]*Node) {
	l := chase.New([]uint32{2}, 16, 1)
	nodes[2].RegisterRegion("chase", l.Regions[2])
	code := chaseCode(b)
	nodes[2].RegisterAM("chase", code, "chase")
	arg := chase.Walk{Key: l.Head}.Bytes()
	ctx := context.Background()
	benchCalls(b, "invoke", func() (*Result, error) { return nodes[1].Invoke(ctx, 2, code, "chase", arg) })
	h, _ := nodes[1].AddCode(code)
	benchCalls(b, "invokehash", func() (*Result, error) { return nodes[1].InvokeHash(ctx, 2, h, "chase", arg) })
	benchCalls(b, "am", func() (*Result, error) { return nodes[1].CallAM(ctx, 2, "chase", arg) })
}

// benchCalls runs call as sub-benchmark name and reports, besides the
// mean, the median round trip (p50-ns): the mean of a round trip on a
// small shared machine is mostly its tail.
func benchCalls(b *testing.B, name string, call func() (*Result, error)) {
	b.Run(name, func(b *testing.B) {
		b.ReportAllocs()
		var rtts []time.Duration
		for b.Loop() {
			t0 := time.Now()
			if _, err := call(); err != nil {
				b.Fatal(err)
			}
			rtts = append(rtts, time.Since(t0))
		}
		slices.Sort(rtts)
		b.ReportMetric(float64(rtts[len(rtts)/2].Nanoseconds()), "p50-ns")
	})
}

// hopList is a list whose every link leaves the node: elements alternate
// between nodes a and b, so a walk of k links makes k-1 forwards.
func hopList(a, b uint32, elems int) *chase.List {
	l := &chase.List{Nodes: []uint32{a, b}, Regions: map[uint32][]byte{}}
	for i := range elems {
		l.Order = append(l.Order, chase.Key([]uint32{a, b}[i%2], uint32(i/2)))
	}
	for _, nd := range l.Nodes {
		l.Regions[nd] = make([]byte, chase.ElemSize*(elems+1)/2)
	}
	for i, k := range l.Order {
		r := l.Regions[uint32(k>>32)][chase.ElemSize*uint32(k):]
		binary.LittleEndian.PutUint64(r, l.Order[(i+1)%elems])
		binary.LittleEndian.PutUint64(r[8:], uint64(i))
	}
	l.Head = l.Order[0]
	return l
}

// BenchmarkChaseHop is the cost of one FORWARD hop of a warm pointer chase
// between two data nodes (receive FORWARD, run the kernel inline, send the
// next FORWARD), from chains of chaseHops hops that an origin starts and
// that reply to it. allocs/hop and ns/hop count the whole process (all
// three nodes), amortizing the invoke and the reply over the chain.
// With BCSHIP_RXE set (in the VM) the nodes run on RDMA.
func BenchmarkChaseHop(b *testing.B) {
	const chaseHops = 200
	dev := os.Getenv("BCSHIP_RXE")
	if dev != "" {
		// Under qemu TCG the kernel may pick the HPET: every clock read is
		// then a system call and an emulated device access.
		cs, _ := os.ReadFile("/sys/devices/system/clocksource/clocksource0/current_clocksource")
		b.Logf("RDMA device %s, clocksource %s", dev, bytes.TrimSpace(cs))
	}
	nodes := cluster(b, []uint32{1, 2, 3}, func(c *Config) { c.DefaultTTL = 255; c.RDMADevice = dev })
	l := hopList(2, 3, 64)
	registerList(b, nodes, l)
	code := chaseCode(b)
	arg := chase.Walk{Key: l.Head, Remaining: chaseHops + 1}.Bytes()
	for _, deadline := range []bool{false, true} {
		name := "nodeadline"
		if deadline {
			name = "deadline"
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			if deadline {
				c, cancel := context.WithTimeout(ctx, time.Hour)
				defer cancel()
				ctx = c
			}
			chain := func() {
				res, err := nodes[1].Invoke(ctx, 2, code, "chase", arg)
				if err != nil {
					b.Fatal(err)
				}
				if res.Hops != chaseHops {
					b.Fatalf("%d hops, want %d", res.Hops, chaseHops)
				}
			}
			chain() // ships the code; the runs qualify for inline
			chain()
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			t0 := time.Now()
			for b.Loop() {
				chain()
			}
			el := time.Since(t0)
			runtime.ReadMemStats(&m1)
			hops := float64(b.N * chaseHops)
			b.ReportMetric(float64(el.Nanoseconds())/hops, "ns/hop")
			b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/hops, "allocs/hop")
			b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/hops, "B/hop")
		})
	}
}
