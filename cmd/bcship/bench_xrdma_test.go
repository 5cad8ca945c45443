package main

import (
	"encoding/csv"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestBenchChaseOutputs runs bench chase with tiny parameters and checks
// the table, the CSV and the PNG.
func TestBenchChaseOutputs(t *testing.T) {
	dir := t.TempDir()
	csvPath, pngPath := filepath.Join(dir, "chase.csv"), filepath.Join(dir, "chase.png")
	out := mustRun(t, "bench", "chase", "--in-process", "--nodes", "2", "--hops", "4,16", "--iters", "3", "--cold", "1",
		"--elems", "64", "--csv", csvPath, "--plot", pngPath)
	t.Logf("bench chase:\n%s", out)
	for _, want := range []string{"hops", "GET/shipped", "shipped/AM", "cold/warm", "\n     4 ", "\n    16 ", "wrote " + csvPath, "wrote " + pngPath,
		"targets (GET/shipped ≥ 1.7×"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	rows := readCSV(t, csvPath)
	if got := strings.Join(rows[0], ","); got != "op,hops,mode,servers,inflight,iterations,p50_us,p99_us,mean_us,ops_per_s" {
		t.Fatalf("CSV header %q", got)
	}
	if len(rows) != 1+2*4 { // two sizes × get, am, shipped, shipped-cold
		t.Fatalf("CSV has %d rows, want 9", len(rows))
	}
	modes := map[string]int{}
	for _, r := range rows[1:] {
		modes[r[2]]++
		if r[0] != "chase" || r[3] != "2" {
			t.Errorf("row %q", r)
		}
		for _, f := range r[6:] {
			if v, err := strconv.ParseFloat(f, 64); err != nil || v <= 0 {
				t.Errorf("row %q: field %q is not a positive number", r, f)
			}
		}
	}
	for _, m := range []string{"get", "am", "shipped", "shipped-cold"} {
		if modes[m] != 2 {
			t.Errorf("CSV has %d rows of mode %s, want 2", modes[m], m)
		}
	}
	f, err := os.Open(pngPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("plot: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 400 || b.Dy() < 200 {
		t.Errorf("plot is %v", b)
	}
}

// TestBenchSeedFormat: the seed-shaped CSV, in throughput mode.
func TestBenchSeedFormat(t *testing.T) {
	csvPath := filepath.Join(t.TempDir(), "seed.csv")
	out := mustRun(t, "bench", "chase", "--in-process", "--nodes", "2", "--format", "seed", "--hops", "1,2", "--max-time", "1ms",
		"--cold", "0", "--inflight", "2", "--elems", "16", "--csv", csvPath)
	if !strings.Contains(out, "shipped/GET") {
		t.Errorf("throughput mode prints no throughput:\n%s", out)
	}
	rows := readCSV(t, csvPath)
	if got := strings.Join(rows[0], ","); got != "mode,servers,iterations,depth,chases_per_s" {
		t.Fatalf("CSV header %q", got)
	}
	if len(rows) != 1+2*3 {
		t.Fatalf("CSV has %d rows, want 7:\n%q", len(rows), rows)
	}
	for _, r := range rows[1:] {
		if n, err := strconv.Atoi(r[2]); err != nil || n < 1 {
			t.Errorf("row %q: iterations", r)
		}
		if v, err := strconv.ParseFloat(r[4], 64); err != nil || v <= 0 {
			t.Errorf("row %q: chases/s", r)
		}
	}
}

// TestBenchLookupGather: the other two operations, one tiny size each.
func TestBenchLookupGather(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "lookup", "--in-process", "--nodes", "3", "--chain", "4", "--entries", "300", "--iters", "3", "--cold", "1"},
		{"bench", "gather", "--in-process", "--nodes", "3", "--count", "20", "--values", "100", "--iters", "3", "--cold", "1"},
	} {
		out := mustRun(t, args...)
		if !strings.Contains(out, "GET/shipped") {
			t.Errorf("bench %s printed no table:\n%s", args[1], out)
		}
	}
	if _, err := bcship(t, "bench", "chase", "--transport", "udp"); err == nil || !strings.Contains(err.Error(), "unknown --transport") {
		t.Errorf("--transport udp: %v", err)
	}
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return rows
}

// TestBenchProcs: data nodes as separate processes, restarted for every
// size (lookup's table changes with the chain length). The data nodes are
// built for the machine's own architecture, so that under qemu-user (an
// arm64 test binary) the cluster is a mixed one: an emulated arm64 origin
// shipping to native data nodes.
func TestBenchProcs(t *testing.T) {
	bin := nodeBinary(t)
	for _, args := range [][]string{
		{"bench", "chase", "--procs", "--nodes", "2", "--hops", "8", "--elems", "64", "--iters", "3", "--cold", "1"},
		{"bench", "lookup", "--procs", "--nodes", "2", "--chain", "2,4", "--entries", "200", "--iters", "3", "--cold", "1"},
	} {
		out := mustRun(t, append(args, "--node-binary", bin)...)
		if !strings.Contains(out, "each in its own process") || !strings.Contains(out, "GET/shipped") {
			t.Errorf("bench %s --procs:\n%s", args[1], out)
		}
	}
}

// TestBenchNetns: data nodes in network namespaces (root only).
func TestBenchNetns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIP (loud): network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skipf("SKIP (loud): no ip tool (apt-get install iproute2): %v", err)
	}
	bin := nodeBinary(t)
	out, err := bcship(t, "bench", "gather", "--netns", "--nodes", "2", "--count", "8", "--values", "64", "--iters", "3",
		"--cold", "1", "--node-binary", bin)
	if err != nil && strings.Contains(err.Error(), "ip netns add") {
		t.Skipf("SKIP (loud): cannot create network namespaces here: %v", err)
	}
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "network namespace") || !strings.Contains(out, "GET/shipped") {
		t.Errorf("bench gather --netns:\n%s", out)
	}
	if ns, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(ns), fmt.Sprintf("bcx%05d", os.Getpid()%100000)) {
		t.Errorf("namespaces left behind:\n%s", ns)
	}
}

// nodeBinary builds bcship for the data-node processes.
func nodeBinary(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bcship")
	host, err := exec.Command("go", "env", "GOHOSTARCH").Output()
	if err != nil {
		t.Skipf("SKIP (loud): no go command to build the data-node binary: %v", err)
	}
	c := exec.Command("go", "build", "-o", bin, ".")
	c.Env = append(os.Environ(), "CGO_ENABLED=0", "GOARCH="+strings.TrimSpace(string(host)))
	if out, err := c.CombinedOutput(); err != nil {
		t.Skipf("SKIP (loud): cannot build the bcship binary for the data-node processes: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "--help").CombinedOutput(); err != nil {
		t.Skipf("SKIP (loud): the bcship binary built for GOHOSTARCH does not run here: %v\n%s", err, out)
	}
	return bin
}
