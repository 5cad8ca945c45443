// Package cycles reads the CPU's cycle counter, as perftest's get_cycles
// does, so that latency benchmarks can time each iteration with the same
// clock as the C baseline they are compared with. time.Now is no substitute
// in the test VM: there the kernel's clocksource is the emulated HPET and
// every reading is a system call.
package cycles

import (
	"time"
)

// PerMicrosecond calibrates the counter against the monotonic clock over d,
// the way perftest's sample_get_cpu_mhz does (it prefers that sample over
// /proc/cpuinfo when they disagree).
func PerMicrosecond(d time.Duration) float64 {
	t0, c0 := time.Now(), Now()
	for time.Since(t0) < d {
	}
	t1, c1 := time.Now(), Now()
	us := float64(t1.Sub(t0)) / float64(time.Microsecond)
	if us <= 0 || c1 <= c0 {
		return 0
	}
	return float64(c1-c0) / us
}
