package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// bench invoke measures the pair over TCP and over shared memory, each with
// the nodes' default waiting and busy-polling, in one table, and each UCX
// row carries invoke/ucx for all four.
func TestBenchInvokeBothTransports(t *testing.T) {
	if testing.Short() {
		t.Skip("runs nodes and, when installed, ucx_perftest")
	}
	var out bytes.Buffer
	if err := benchInvoke(context.Background(), &out, 64, 200, []bool{false, true}, []string{"tcp", "shm"}); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Logf("\n%s", out.String())
	for _, row := range []string{"go tcp ping-pong", "bcship invoke tcp", "bcship AM tcp", "bcship invoke shm", "bcship AM shm",
		"bcship invoke tcp busy", "bcship AM tcp busy", "bcship invoke shm busy", "bcship AM shm busy"} {
		if !strings.Contains(out.String(), row+" ") {
			t.Errorf("no %q row", row)
		}
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "ucx ucp_am_lat") && strings.Contains(line, " p50 ") &&
			!(strings.Contains(line, "invoke tcp/ucx") && strings.Contains(line, "invoke shm/ucx") &&
				strings.Contains(line, "invoke tcp busy/ucx") && strings.Contains(line, "invoke shm busy/ucx")) {
			t.Errorf("UCX row without all four ratios: %q", line)
		}
	}
}
