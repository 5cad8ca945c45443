package xrdma

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// benchNodes is the cluster size of the benchmarks (DESIGN §8, issue 7).
const benchNodes = 4

// benchModes runs op b.N times in every mode, interleaved, and reports each
// mode's median and the ratios the targets are stated in, all from the
// same run: GET/shipped (target ≥ 1.7) and shipped/AM (target ≤ 1.10).
func benchModes(b *testing.B, op Op) {
	ctx := context.Background()
	for i := range 3 { // warm: code cached everywhere, connections hot
		for _, m := range Modes {
			if err := op.Run(ctx, m, i); err != nil {
				b.Fatal(err)
			}
		}
	}
	lat := make([][]time.Duration, len(Modes))
	b.ResetTimer()
	for i := range b.N {
		for k := range Modes {
			k = (k + i) % len(Modes)
			t0 := time.Now()
			if err := op.Run(ctx, Modes[k], i); err != nil {
				b.Fatal(err)
			}
			lat[k] = append(lat[k], time.Since(t0))
		}
	}
	b.StopTimer()
	med := make([]float64, len(Modes))
	for k, m := range Modes {
		slices.Sort(lat[k])
		med[k] = float64(lat[k][len(lat[k])/2].Nanoseconds()) / 1e3
		b.ReportMetric(med[k], m.String()+"-µs")
	}
	b.ReportMetric(med[0]/med[2], "GET/shipped")
	b.ReportMetric(med[2]/med[1], "shipped/AM")
}

func BenchmarkChase(b *testing.B) {
	c, codes := startCluster(b, benchNodes)
	l, err := NewChaseList(c.IDs(), 4096, 1)
	if err != nil {
		b.Fatal(err)
	}
	if err := l.Install(c.Targets()); err != nil {
		b.Fatal(err)
	}
	for _, hops := range []int{16, 64, 256, 1024} {
		b.Run(fmt.Sprintf("hops=%d", hops), func(b *testing.B) {
			ch, err := NewChase(c.Origin, codes["chase"], l, hops)
			if err != nil {
				b.Fatal(err)
			}
			benchModes(b, ch)
		})
	}
}

func BenchmarkLookup(b *testing.B) {
	c, codes := startCluster(b, benchNodes)
	for _, chain := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("chain=%d", chain), func(b *testing.B) {
			t, err := NewHashTable(benchNodes, 16384, chain, 1)
			if err != nil {
				b.Fatal(err)
			}
			if err := t.Install(c.Targets()); err != nil {
				b.Fatal(err)
			}
			l, err := NewLookup(context.Background(), c.Origin, codes["lookup"], t, t.Keys(256, 1))
			if err != nil {
				b.Fatal(err)
			}
			benchModes(b, l)
		})
	}
}

func BenchmarkGather(b *testing.B) {
	c, codes := startCluster(b, benchNodes)
	g, err := NewGatherData(c.IDs(), 65536, 1)
	if err != nil {
		b.Fatal(err)
	}
	if err := g.Install(c.Targets()); err != nil {
		b.Fatal(err)
	}
	for _, count := range []int{16, 256, 1024} {
		b.Run(fmt.Sprintf("count=%d", count), func(b *testing.B) {
			sets := make([][]Ref, 16)
			for i := range sets {
				sets[i] = g.Refs(count, uint64(i))
			}
			ga, err := NewGather(c.Origin, codes["gather"], g, sets)
			if err != nil {
				b.Fatal(err)
			}
			benchModes(b, ga)
		})
	}
}
