package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// ucxResult is one ucx_perftest ucp_am_lat run: its p50 one-way latency
// (half a round trip, as perftest tools report latency).
type ucxResult struct {
	transports string // UCX_TLS, "" for UCX's choice (shared memory on one host)
	oneWay     time.Duration
}

// errNoUCX reports that ucx_perftest is not installed (Debian: ucx-utils).
var errNoUCX = errors.New("ucx_perftest not installed (apt-get install ucx-utils)")

// ucxAMLatency runs ucx_perftest's ucp_am_lat between a server and a client
// on loopback, size bytes, iters iterations, with UCX_TLS=tls when set. UCX
// left to itself picks shared memory on one host; tls "tcp" is the
// like-for-like baseline for bcship's TCP transport.
func ucxAMLatency(ctx context.Context, size, iters int, tls string) (ucxResult, error) {
	bin, err := exec.LookPath("ucx_perftest")
	if err != nil {
		return ucxResult{}, errNoUCX
	}
	port, err := freePort()
	if err != nil {
		return ucxResult{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	env := os.Environ()
	if tls != "" {
		env = append(env, "UCX_TLS="+tls)
	}
	srv := exec.CommandContext(ctx, bin, "-p", strconv.Itoa(port))
	srv.Env = env
	if err := srv.Start(); err != nil {
		return ucxResult{}, fmt.Errorf("ucx_perftest server: %w", err)
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	// The server listens a moment after it starts; retry the client.
	var out []byte
	for attempt := 0; ; attempt++ {
		cli := exec.CommandContext(ctx, bin, "127.0.0.1", "-p", strconv.Itoa(port),
			"-t", "ucp_am_lat", "-s", strconv.Itoa(size), "-n", strconv.Itoa(iters))
		cli.Env = env
		out, err = cli.CombinedOutput()
		if err == nil || attempt == 20 || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return ucxResult{}, fmt.Errorf("ucx_perftest client: %v\n%s", err, out)
	}
	p50, err := parseUCXFinal(out)
	if err != nil {
		return ucxResult{}, err
	}
	return ucxResult{transports: tls, oneWay: p50}, nil
}

// parseUCXFinal reads the 50th-percentile latency (µs) from the "Final:"
// row of ucx_perftest's table: Final: iterations p50 average overall ...
func parseUCXFinal(out []byte) (time.Duration, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 3 && f[0] == "Final:" {
			us, err := strconv.ParseFloat(f[2], 64)
			if err != nil {
				return 0, fmt.Errorf("ucx_perftest: bad latency %q", f[2])
			}
			return time.Duration(us * float64(time.Microsecond)), nil
		}
	}
	return 0, fmt.Errorf("ucx_perftest printed no Final row:\n%s", out)
}
