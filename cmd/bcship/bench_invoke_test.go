package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/bcship/bcship/transport/tcp"
)

// bench invoke measures the pair over TCP and over shared memory, each with
// the nodes' default waiting and busy-polling, in one table, and each UCX
// row carries invoke/ucx for all four.
func TestBenchInvokeBothTransports(t *testing.T) {
	if testing.Short() {
		t.Skip("runs nodes and, when installed, ucx_perftest")
	}
	var out bytes.Buffer
	var progress bytes.Buffer
	o := invokeBench{size: 64, iters: 200, rounds: 2, modes: []bool{false, true}, kinds: []string{"tcp", "shm"}}
	if err := benchInvoke(context.Background(), &out, &progress, o); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Logf("\n%s", out.String())
	if !strings.Contains(progress.String(), "round 2/2") {
		t.Errorf("no progress for round 2: %q", progress.String())
	}
	system, err := tcp.DefaultCongestion()
	if err != nil {
		t.Fatal(err)
	}
	// The floor with the busy nodes' congestion control and with the
	// system's (the others'), one row when they are the same.
	for _, row := range []string{"go tcp ping-pong", floorRow(tcp.BusyCongestion), floorRow(system), "bcship invoke tcp", "bcship AM tcp", "bcship invoke shm", "bcship AM shm",
		"bcship invoke tcp busy", "bcship AM tcp busy", "bcship invoke shm busy", "bcship AM shm busy"} {
		if !strings.Contains(out.String(), row+" ") {
			t.Errorf("no %q row", row)
		}
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "ucx ucp_am_lat") && strings.Contains(line, " p50 ") &&
			!(strings.Contains(line, "invoke tcp/ucx") && strings.Contains(line, "invoke shm/ucx") && strings.Contains(line, "–") &&
				strings.Contains(line, "invoke tcp busy/ucx") && strings.Contains(line, "invoke shm busy/ucx")) {
			t.Errorf("UCX row without all four ratios: %q", line)
		}
	}
}

// The floor's ping-pong echoes what it sent, and stops without hanging;
// it takes the congestion control it is given, and fails on one the
// system does not have.
func TestRawPingPong(t *testing.T) {
	if _, _, err := rawPingPong(100, "no-such-algorithm"); err == nil {
		t.Fatal("no error for an unknown congestion control")
	}
	f, stop, err := rawPingPong(100, tcp.BusyCongestion)
	if err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		if err := f(); err != nil {
			stop()
			t.Fatal(err)
		}
	}
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("stop hangs")
	}
}

// Ratios are taken within a round and only over rounds that measured both
// rows; medians skip rounds that measured nothing.
func TestRoundRatio(t *testing.T) {
	us := time.Microsecond
	a := &series{name: "a", p50: []time.Duration{10 * us, 0, 30 * us, 12 * us}}
	b := &series{name: "b", p50: []time.Duration{5 * us, 7 * us, 10 * us, 12 * us}}
	med, lo, hi, ok := roundRatio(a, b)
	if !ok || med != 2 || lo != 1 || hi != 3 {
		t.Errorf("roundRatio = %v %v %v %v, want 2 1 3 true", med, lo, hi, ok)
	}
	if _, _, _, ok := roundRatio(a, &series{p50: []time.Duration{0, 1}}); ok {
		t.Error("ratio over no common round")
	}
	if m := median(a.p50); m != 12*us {
		t.Errorf("median = %v, want 12µs", m)
	}
	if m := median(b.p50); m != 8500*time.Nanosecond {
		t.Errorf("median of an even count = %v, want 8.5µs (the middle two's mean)", m)
	}
	if m := median([]time.Duration{0, 0}); m != 0 {
		t.Errorf("median of nothing = %v", m)
	}
}
