package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/bcship/bcship/transport/rdma"
)

// cliEnv, when set in a test binary's environment, makes it the bcship CLI
// (os.Args[1:]) instead of a test run: tests that need bcship as a child
// process (data nodes, serve) re-execute the test binary with it, since in
// the soft-RoCE VM the test binary is the only program there is.
const cliEnv = "BCSHIP_TEST_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(cliEnv) != "" {
		logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		if err := newRoot(logger).Execute(); err != nil {
			fmt.Fprintln(os.Stderr, "bcship:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestBenchRdmaFlags runs on the host: --transport rdma wants a device,
// and a device that is not there fails the bench (no silent TCP).
func TestBenchRdmaFlags(t *testing.T) {
	if _, err := bcship(t, "bench", "chase", "--transport", "rdma", "--in-process"); err == nil || !strings.Contains(err.Error(), "--rdma-dev") {
		t.Errorf("--transport rdma without a device: %v", err)
	}
	if _, err := bcship(t, "bench", "chase", "--rdma-dev", "rxe0", "--in-process"); err == nil || !strings.Contains(err.Error(), "--transport rdma") {
		t.Errorf("--rdma-dev without --transport rdma: %v", err)
	}
	_, err := bcship(t, "bench", "chase", "--transport", "rdma", "--rdma-dev", "nosuchdev9", "--in-process", "--nodes", "2",
		"--hops", "4", "--iters", "1", "--elems", "16")
	if !errors.Is(err, rdma.ErrNoRDMA) {
		t.Errorf("--rdma-dev nosuchdev9: %v, want ErrNoRDMA", err)
	}
}

// rdmaBench runs bench chase over RDMA with args added and checks that the
// three modes agreed at every size, that the GET runs were one-sided, and
// that the table has a row per size.
func rdmaBench(t *testing.T, dev string, hops []int, args ...string) string {
	t.Helper()
	hs := make([]string, len(hops))
	for i, h := range hops {
		hs[i] = strconv.Itoa(h)
	}
	out, err := bcship(t, append([]string{"bench", "chase", "--transport", "rdma", "--rdma-dev", dev, "--nodes", "3",
		"--hops", strings.Join(hs, ",")}, args...)...)
	if err != nil {
		t.Fatalf("bench chase --transport rdma %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if !strings.Contains(out, "RDMA on "+dev) || !strings.Contains(out, "GET/shipped") || !strings.Contains(out, "shipped/AM") {
		t.Errorf("no RDMA table")
	}
	for _, h := range hops {
		if !strings.Contains(out, fmt.Sprintf("hops %d: GET, AM and shipped agree with Go", h)) {
			t.Errorf("%d hops: the modes were not checked", h)
		}
		if !regexp.MustCompile(fmt.Sprintf(`(?m)^ +%d +\d+ `, h)).MatchString(out) {
			t.Errorf("no table row for %d hops", h)
		}
	}
	return out
}

// oneSidedFrames checks the "GET run checked" lines: a GET-driven walk of
// h hops over messages makes the data nodes receive at least h frames;
// one-sided, none (a HELLO heartbeat may slip in).
func oneSidedFrames(t *testing.T, out string, hops []int) {
	t.Helper()
	for _, h := range hops {
		m := regexp.MustCompile(fmt.Sprintf(`hops %d: GET run checked, data nodes received (\d+) frames`, h)).FindStringSubmatch(out)
		if m == nil {
			t.Errorf("%d hops: no GET frame count", h)
			continue
		}
		if f, _ := strconv.Atoi(m[1]); f >= h/2 && f > 2 {
			t.Errorf("%d hops: the data nodes received %d frames during a GET walk: GETs are not one-sided", h, f)
		}
	}
}

// TestRdmaBenchChase runs bench chase over soft-RoCE, in process, with
// few runs. BCSHIP_BENCH (passed into the VM by rxevm), when set,
// adds measured runs with those extra arguments, separated by ";", e.g.
// "--hops 64,256 --iters 30" (in process unless --procs is given; --procs
// runs the data nodes as this test binary re-executed as bcship).
func TestRdmaBenchChase(t *testing.T) {
	dev := os.Getenv("BCSHIP_RXE")
	if dev == "" {
		t.Skip("needs soft-RoCE: run in the VM (make rxe-test)")
	}
	t.Setenv(cliEnv, "1") // --procs children: this binary as bcship
	// The table (64 and 256 hops), with few runs: CI shows it; the
	// ratios are for BCSHIP_BENCH runs with more.
	hops := []int{64, 256}
	out := rdmaBench(t, dev, hops, "--in-process", "--iters", "5", "--cold", "1", "--elems", "4096")
	t.Logf("bench chase --transport rdma:\n%s", out)
	oneSidedFrames(t, out, hops)

	if os.Getenv("BCSHIP_CPUPROFILE") != "" {
		stop := profileToConsole(t)
		defer stop()
	}
	for _, extra := range strings.Split(os.Getenv("BCSHIP_BENCH"), ";") {
		if strings.TrimSpace(extra) == "" {
			continue
		}
		args, hops := benchArgs(t, extra)
		out := rdmaBench(t, dev, hops, args...)
		if !slices.Contains(args, "--procs") {
			oneSidedFrames(t, out, hops)
		}
		fmt.Printf("BCSHIP_BENCH=%q:\n%s\n", extra, out) // the table, for the record
	}
}

// benchArgs splits BCSHIP_BENCH's arguments for one run into the hops
// (default 64,256), which rdmaBench passes, and the rest: --in-process
// unless --procs is there.
func benchArgs(t *testing.T, extra string) (args []string, hops []int) {
	t.Helper()
	hops = []int{64, 256}
	fs := strings.Fields(extra)
	if !slices.Contains(fs, "--procs") {
		args = append(args, "--in-process")
	}
	for i := 0; i < len(fs); i++ {
		if fs[i] == "--hops" && i+1 < len(fs) {
			hops = nil
			for _, s := range strings.Split(fs[i+1], ",") {
				h, err := strconv.Atoi(s)
				if err != nil {
					t.Fatalf("BCSHIP_BENCH: --hops %q", fs[i+1])
				}
				hops = append(hops, h)
			}
			i++
			continue
		}
		args = append(args, fs[i])
	}
	return args, hops
}

// profileToConsole CPU-profiles the BCSHIP_BENCH runs and prints the
// profile, base64, between marker lines: the VM's console is the only way
// out of the guest. Extract it with
//
//	sed -n '/^BCSHIP_PPROF_BEGIN/,/^BCSHIP_PPROF_END/p' log | sed '1d;$d' | base64 -d > cpu.pprof
func profileToConsole(t *testing.T) (stop func()) {
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err != nil {
		t.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		enc := base64.StdEncoding.EncodeToString(buf.Bytes())
		fmt.Println("BCSHIP_PPROF_BEGIN")
		for len(enc) > 0 {
			n := min(len(enc), 76)
			fmt.Println(enc[:n])
			enc = enc[n:]
		}
		fmt.Println("BCSHIP_PPROF_END")
	}
}
