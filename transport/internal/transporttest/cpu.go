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
