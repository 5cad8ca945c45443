package transporttest

import (
	"os"
	"syscall"
	"testing"
	"time"
)

// CPUTime is the CPU time this process has used, for tests that check
// that idle loops do not spin. Under an emulator (the Makefile's arm64
// target runs the tests under qemu-user and says so in BCSHIP_EMULATED)
// that is the emulator's time, and under the race detector mostly the
// detector's, which say nothing about the loops: such tests skip there,
// loudly, and run in the plain native build.
func CPUTime(t testing.TB) time.Duration {
	t.Helper()
	if os.Getenv("BCSHIP_EMULATED") != "" {
		t.Skip("SKIP (loud): CPU time under an emulator is the emulator's; this test runs on the native build")
	}
	if raceEnabled {
		t.Skip("SKIP (loud): CPU time under the race detector is mostly the detector's; this test runs in the plain build")
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// SpacedRoundsCPU is the CPU time of quiet traffic, for tests that check
// that busy-polling loops spin only while traffic flows: for default
// transports and then busy ones, start(busy) sets a pair up (its round
// trip warmed up once) and returns one round trip and how to stop the
// pair; after 50 ms of quiet, rounds round trips every gap apart are
// timed. It returns both CPU times and the busy run's wall time.
func SpacedRoundsCPU(t testing.TB, rounds int, gap time.Duration,
	start func(busy bool) (round func(id uint64), stop func())) (def, busy, wall time.Duration) {
	t.Helper()
	run := func(b bool) (used, wall time.Duration) {
		round, stop := start(b)
		defer stop()
		round(1)
		time.Sleep(50 * time.Millisecond)
		c0, w0 := CPUTime(t), time.Now()
		for i := range rounds {
			time.Sleep(gap)
			round(uint64(i + 2))
		}
		return CPUTime(t) - c0, time.Since(w0)
	}
	def, _ = run(false)
	busy, wall = run(true)
	t.Logf("CPU in %v: default transports %v, busy %v", wall.Round(time.Millisecond), def, busy)
	return def, busy, wall
}
