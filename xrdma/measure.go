package xrdma

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bc "github.com/bcship/bcship"
)

// MeasureConfig says how to measure an Op.
type MeasureConfig struct {
	// Iters is the number of measured runs per mode.
	Iters int
	// Warmup is the number of unmeasured runs per mode before them;
	// default Iters/10, at least 2 and at most 50. Warming up stops early
	// once it has taken a quarter of MaxTime.
	Warmup int
	// Inflight is the number of runs kept outstanding at once (throughput
	// mode); default 1: one at a time, the modes interleaved.
	Inflight int
	// MaxTime ends the measured runs of an Op early (at least MinIters per
	// mode are kept); 0: no limit.
	MaxTime time.Duration
	// Cold is the number of cold shipped runs, each with code no node has
	// (Code.NextCold); 0: none.
	Cold int
	// Code and Origin make the cold variants; needed when Cold > 0.
	Code   *Code
	Origin *bc.Node
	// Progress, when set, is called now and then (never concurrently) with
	// the runs done and the runs planned.
	Progress func(done, total int)
}

// MinIters is the fewest measured runs per mode that MaxTime leaves.
const MinIters = 3

// Sample is the measured runs of one mode.
type Sample struct {
	Mode     Mode
	Inflight int
	// Lat are the latencies of the runs, sorted.
	Lat []time.Duration
	// Busy is the time the mode took: the sum of the latencies when runs
	// went one at a time, the wall time of the runs otherwise.
	Busy time.Duration
}

// N is the number of runs.
func (s *Sample) N() int { return len(s.Lat) }

// Quantile is the q-quantile of the latencies (nearest rank).
func (s *Sample) Quantile(q float64) time.Duration {
	if len(s.Lat) == 0 {
		return 0
	}
	i := int(q*float64(len(s.Lat)) + 0.5)
	return s.Lat[min(max(i-1, 0), len(s.Lat)-1)]
}

// P50 is the median latency.
func (s *Sample) P50() time.Duration { return s.Quantile(0.5) }

// P99 is the 99th percentile latency.
func (s *Sample) P99() time.Duration { return s.Quantile(0.99) }

// Mean is the mean latency.
func (s *Sample) Mean() time.Duration {
	if len(s.Lat) == 0 {
		return 0
	}
	var t time.Duration
	for _, d := range s.Lat {
		t += d
	}
	return t / time.Duration(len(s.Lat))
}

// PerSecond is the throughput: runs per second of Busy.
func (s *Sample) PerSecond() float64 {
	if s.Busy <= 0 {
		return 0
	}
	return float64(len(s.Lat)) / s.Busy.Seconds()
}

// Measure runs op in every mode and returns a Sample per mode (and per
// Cold, when cfg.Cold > 0). Every run's answer is checked; the first wrong
// one ends the measurement with its error.
//
// Cold runs go first, each with fresh code. Then, one run at a time, the
// modes take turns (in rotating order) so that noise from a shared machine
// falls on all of them alike; with Inflight > 1 each mode in turn keeps
// that many runs outstanding.
func Measure(ctx context.Context, op Op, cfg MeasureConfig) (map[Mode]*Sample, error) {
	if cfg.Iters < 1 {
		return nil, fmt.Errorf("%w: %d iterations", ErrParam, cfg.Iters)
	}
	if cfg.Inflight < 1 {
		cfg.Inflight = 1
	}
	if cfg.Warmup <= 0 {
		cfg.Warmup = min(max(cfg.Iters/10, 2), 50)
	}
	if cfg.Cold > 0 && (cfg.Code == nil || cfg.Origin == nil) {
		return nil, fmt.Errorf("%w: cold runs need Code and Origin", ErrParam)
	}
	out := map[Mode]*Sample{}
	if cfg.Cold > 0 {
		s := &Sample{Mode: Cold, Inflight: 1}
		for i := range cfg.Cold {
			code, err := cfg.Code.NextCold(cfg.Origin)
			if err != nil {
				return nil, err
			}
			t0 := time.Now()
			if err := op.RunCold(ctx, code, i); err != nil {
				return nil, err
			}
			s.Lat = append(s.Lat, time.Since(t0))
		}
		finish(s)
		out[Cold] = s
	}
	var err error
	if cfg.Inflight == 1 {
		err = interleaved(ctx, op, cfg, out)
	} else {
		err = concurrent(ctx, op, cfg, out)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

func finish(s *Sample) {
	for _, d := range s.Lat {
		s.Busy += d
	}
	slices.Sort(s.Lat)
}

// warmup runs cfg.Warmup unmeasured rounds of modes.
func warmup(ctx context.Context, op Op, cfg MeasureConfig, modes ...Mode) error {
	start := time.Now()
	for r := range cfg.Warmup {
		if cfg.MaxTime > 0 && r >= 2 && time.Since(start) > cfg.MaxTime/4 {
			return nil
		}
		for _, m := range modes {
			if err := op.Run(ctx, m, r); err != nil {
				return err
			}
		}
	}
	return nil
}

// interleaved runs one run of each mode per round, rotating their order.
func interleaved(ctx context.Context, op Op, cfg MeasureConfig, out map[Mode]*Sample) error {
	if err := warmup(ctx, op, cfg, Modes...); err != nil {
		return err
	}
	ss := make([]*Sample, len(Modes))
	for k, m := range Modes {
		ss[k] = &Sample{Mode: m, Inflight: 1, Lat: make([]time.Duration, 0, cfg.Iters)}
	}
	start, lastReport := time.Now(), time.Now()
	for r := range cfg.Iters {
		if cfg.MaxTime > 0 && r >= MinIters && time.Since(start) > cfg.MaxTime {
			break
		}
		for k := range Modes {
			k = (k + r) % len(Modes)
			t0 := time.Now()
			if err := op.Run(ctx, Modes[k], r); err != nil {
				return err
			}
			ss[k].Lat = append(ss[k].Lat, time.Since(t0))
		}
		if cfg.Progress != nil && time.Since(lastReport) > time.Second {
			cfg.Progress(r+1, cfg.Iters)
			lastReport = time.Now()
		}
	}
	for _, s := range ss {
		finish(s)
		out[s.Mode] = s
	}
	return nil
}

// concurrent measures each mode in turn with cfg.Inflight runs
// outstanding.
func concurrent(ctx context.Context, op Op, cfg MeasureConfig, out map[Mode]*Sample) error {
	for k, m := range Modes {
		if err := warmup(ctx, op, cfg, m); err != nil {
			return err
		}
		ctx, cancel := context.WithCancel(ctx)
		var next atomic.Int64
		var mu sync.Mutex
		var first error
		lats := make([][]time.Duration, cfg.Inflight)
		start := time.Now()
		var wg sync.WaitGroup
		for w := range cfg.Inflight {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= cfg.Iters || ctx.Err() != nil ||
						(cfg.MaxTime > 0 && i >= MinIters*cfg.Inflight && time.Since(start) > cfg.MaxTime) {
						return
					}
					t0 := time.Now()
					if err := op.Run(ctx, m, i); err != nil {
						mu.Lock()
						if first == nil {
							first = err
						}
						mu.Unlock()
						cancel()
						return
					}
					lats[w] = append(lats[w], time.Since(t0))
					if cfg.Progress != nil && i%max(cfg.Iters/10, 1) == 0 {
						mu.Lock()
						cfg.Progress(k*cfg.Iters+i, len(Modes)*cfg.Iters)
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		wall := time.Since(start)
		cancel()
		if first != nil {
			return first
		}
		s := &Sample{Mode: m, Inflight: cfg.Inflight, Lat: slices.Concat(lats...)}
		slices.Sort(s.Lat)
		s.Busy = wall
		out[m] = s
	}
	return nil
}
