package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	bc "github.com/bcship/bcship"
	"github.com/bcship/bcship/bundle"
	"github.com/bcship/bcship/internal/chase"
	"github.com/bcship/bcship/kernels"
	"github.com/bcship/bcship/loader"
	"github.com/bcship/bcship/toolchain"
	"github.com/bcship/bcship/transport/rdma"
	"github.com/bcship/bcship/transport/tcp"
	"github.com/bcship/bcship/wire"
)

// rxeDevice is the soft-RoCE device inside the VM (make rxe-test); on the
// host the test skips, loudly.
func rxeDevice(t *testing.T) string {
	t.Helper()
	d := os.Getenv("BCSHIP_RXE")
	if d == "" {
		t.Skipf("SKIP (loud): %s needs soft-RoCE (BCSHIP_RXE unset: not in the VM); run `make rxe-test`, or "+
			"go test -run TestRdmaBcshipd -exec \"go run ./internal/cmd/rxevm --\" ./cmd/bcshipd", t.Name())
	}
	return d
}

// TestRdmaBcshipd runs bcshipd on transport/rdma over soft-RoCE, as a
// process (this test binary re-executed as bcshipd: the VM has no other
// program), trusting one key and serving a "chase" region from a file.
// An RDMA origin in the test ships the prebuilt chase kernel, signed,
// invokes it (shipped, then cached) and checks the walks against Go; the
// invokes and replies travel over the RDMA connection, and a Get of the
// region is one-sided (the origin's RDMA connection sends no frame,
// bcshipd receives none beyond TCP heartbeats). /healthz and /metrics
// answer; then SIGTERM during a long walk: bcshipd drains (the walk's
// answer still arrives over RDMA, correct) and exits 0.
func TestRdmaBcshipd(t *testing.T) {
	dev := rxeDevice(t)
	start := time.Now()
	const id, originID, elems, seed = 5, 100, 200, 11
	l := chase.New([]uint32{id}, elems, seed)

	// Signed code and the trust directory holding its key.
	obj, err := kernels.Object("chase", loader.HostMachine())
	if err != nil {
		t.Fatal(err)
	}
	wrapped, err := toolchain.ParseCode(obj)
	if err != nil {
		t.Fatal(err)
	}
	data, err := wrapped.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	code, err := bundle.Read(data)
	if err != nil {
		t.Fatal(err)
	}
	_, _, trust := signWithNewKey(t, code)
	dir := t.TempDir()
	regionFile := filepath.Join(dir, "chase.bin")
	if err := os.WriteFile(regionFile, l.Regions[id], 0o644); err != nil {
		t.Fatal(err)
	}

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, nil, self, []string{
		"--id", strconv.Itoa(id), "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0",
		"--trust", trust, "--region", "chase=" + regionFile, "--rdma-dev", dev,
		"--deadline", "60s", "--drain-timeout", "60s", "--log-level", "debug",
	}, []string{daemonEnv + "=1"})
	addr := d.waitReady(30 * time.Second)
	ready := logRecord(t, d, "ready")
	httpAddr, _ := ready["http"].(string)
	if httpAddr == "" {
		t.Fatalf("ready record names no http address: %v", ready)
	}
	started := logRecord(t, d, "node started")
	if tr := started["transport"]; tr != "rdma "+dev {
		t.Fatalf("bcshipd's node runs on %v, want \"rdma %s\"", tr, dev)
	}
	t.Logf("bcshipd up in %v: node %d at %s on %v, http %s", time.Since(start), id, addr, started["transport"], httpAddr)

	origin, err := bc.NewNode(bc.Config{ID: originID, RDMADevice: dev, Peers: map[uint32]string{id: addr},
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	defer origin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // TCG
	defer cancel()
	if err := origin.Start(ctx); err != nil {
		t.Fatal(err)
	}

	// Ship and invoke, then invoke the cached code.
	const links = 3 * elems / 2 // around the cycle and on
	walk := func(links int) *bc.Result {
		t.Helper()
		res, err := origin.Invoke(ctx, id, code, "chase", chase.Walk{Key: l.Head, Remaining: uint64(links)}.Bytes())
		if err != nil {
			t.Fatalf("chase of %d links on bcshipd: %v\n%s", links, err, d.Logs())
		}
		got, err := chase.Parse(res.Reply())
		if err != nil {
			t.Fatalf("status %d: %v", res.Status, err)
		}
		if want := l.Expect(links); got != want {
			t.Fatalf("chase of %d links on bcshipd = %+v, want %+v (Go)", links, got, want)
		}
		return res
	}
	s0 := origin.Stats()
	r1 := walk(links)
	s1 := origin.Stats()
	r2 := walk(links)
	s2 := origin.Stats()
	t.Logf("chase of %d links: shipped %v (%d ships, %d bundle bytes), cached %v", links, r1.Elapsed, s1.Ships-s0.Ships,
		s1.ShipBytes-s0.ShipBytes, r2.Elapsed)
	if s1.Ships-s0.Ships != 1 || s2.Ships != s1.Ships {
		t.Errorf("ships: %d in the first invoke (want 1), %d in the second (want 0)", s1.Ships-s0.Ships, s2.Ships-s1.Ships)
	}

	// bcshipd announced RDMA, and the invokes and replies went over the
	// RDMA connection, not the TCP fallback.
	var hello wire.Hello
	for _, p := range origin.Peers() {
		if p.ID == id {
			hello = p.Hello
		}
	}
	if !hello.Caps.Has(wire.CapRDMA) {
		t.Errorf("bcshipd's HELLO does not announce RDMA: %+v", hello)
	}
	rt := originRDMA(t, origin)
	c := waitConn(t, rt, id)
	t.Logf("origin → bcshipd RDMA connection: QPN %d ↔ %d, %d frames out, %d in, min credits %d",
		c.QPN, c.PeerQPN, c.FramesSent, c.FramesRecv, c.MinCredits)
	if c.FramesSent < 2 || c.FramesRecv < 2 {
		t.Errorf("RDMA connection to bcshipd carried %d frames out and %d in; want the 2 invokes and their replies", c.FramesSent, c.FramesRecv)
	}
	for _, bad := range []string{"rdma setup failed", "rdma accept failed", "bad rdma control message"} {
		if strings.Contains(d.Logs(), bad) {
			t.Errorf("bcshipd logged %q:\n%s", bad, d.Logs())
		}
	}

	// One-sided Get of the region: the whole region, then elements.
	waitRegion(t, rt, id, "chase")
	region := l.Regions[id]
	framesOut := func() (n uint64) {
		for _, c := range rt.Conns() {
			n += c.FramesSent
		}
		return n
	}
	const gets = 64
	out0, in0, t0 := framesOut(), metric(t, httpAddr, "transport_frames_received_total"), time.Now()
	got, err := origin.Get(ctx, id, "chase", 0, uint32(len(region)))
	if err != nil || !bytes.Equal(got, region) {
		t.Fatalf("Get of bcshipd's whole region (%d bytes): %v, equal %v", len(region), err, bytes.Equal(got, region))
	}
	for i := range gets - 1 {
		off := uint64(i*37%elems) * chase.ElemSize
		got, err := origin.Get(ctx, id, "chase", off, chase.ElemSize)
		if err != nil || !bytes.Equal(got, region[off:off+chase.ElemSize]) {
			t.Fatalf("Get of element at %d: %x, %v; want %x", off, got, err, region[off:off+chase.ElemSize])
		}
	}
	el := time.Since(t0)
	out1, in1 := framesOut(), metric(t, httpAddr, "transport_frames_received_total")
	// The origin's idle TCP control connection sends a HELLO heartbeat
	// every tcp.DefaultHeartbeat; as messages, every Get would be a frame.
	budget := uint64(time.Since(t0)/tcp.DefaultHeartbeat) + 2
	t.Logf("%d one-sided Gets in %v (%v each): origin sent %d frames over RDMA, bcshipd received %d frames (heartbeat budget %d)",
		gets, el, el/gets, out1-out0, in1-in0, budget)
	if out1 != out0 {
		t.Errorf("%d Gets sent %d frames over RDMA: not one-sided", gets, out1-out0)
	}
	if in1-in0 > budget {
		t.Errorf("bcshipd received %d frames during %d Gets in %v (heartbeats allow %d): not one-sided", in1-in0, gets, el, budget)
	}

	// /healthz and /metrics.
	if code, body := httpGet(t, httpAddr, "/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q, want 200 ok", code, body)
	}
	for name, want := range map[string]uint64{"up": 1, "ships_received_total": 1, "invocations_total": 2, "cache_entries": 1,
		"faults_total": 0, "deadlines_total": 0} {
		if got := metric(t, httpAddr, name); got != want {
			t.Errorf("/metrics bcship_%s = %d, want %d", name, got, want)
		}
	}
	// The SHIP arrives before its INVOKE, so both runs may find the code
	// cached; each counts once either way.
	if h, m := metric(t, httpAddr, "cache_hits_total"), metric(t, httpAddr, "cache_misses_total"); h+m != 2 || h == 0 {
		t.Errorf("/metrics: %d cache hits and %d misses, want 2 runs with at least the second a hit", h, m)
	}

	// SIGTERM while a long walk runs: the node drains, the walk's answer
	// arrives, and bcshipd exits 0. Size the walk from a timed one (less
	// the round trip of the short cached walk) to run about 2 s, TCG or
	// not.
	const probe = 2_000_000
	r3 := walk(probe)
	run := max(r3.Elapsed-r2.Elapsed, time.Millisecond)
	long := int(min(max(int64(probe)*int64(2*time.Second)/int64(run), probe), 1<<28))
	want := make(chan chase.Walk, 1)
	go func() { want <- l.Expect(long) }()
	type answer struct {
		res *bc.Result
		err error
	}
	done := make(chan answer, 1)
	go func() {
		res, err := origin.Invoke(ctx, id, code, "chase", chase.Walk{Key: l.Head, Remaining: uint64(long)}.Bytes())
		done <- answer{res, err}
	}()
	for t1 := time.Now(); metric(t, httpAddr, "running") != 1; time.Sleep(2 * time.Millisecond) {
		if time.Since(t1) > 10*time.Second {
			t.Fatalf("the walk of %d links did not start on bcshipd within 10 s", long)
		}
	}
	sig := time.Now()
	d.stop(t) // SIGTERM; expects exit 0 and the "stopped" record
	t.Logf("SIGTERM during a walk of %d links (probe: %d links in %v): bcshipd exited after %v", long, probe, r3.Elapsed, time.Since(sig))
	var a answer
	select {
	case a = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("no answer to the walk 30 s after bcshipd stopped")
	}
	if a.err != nil {
		t.Fatalf("walk during drain: %v; want its answer (the run finishes before the node closes)\n%s", a.err, d.Logs())
	}
	gotW, err := chase.Parse(a.res.Reply())
	if w := <-want; err != nil || gotW != w {
		t.Fatalf("walk of %d links during drain = %+v, %v; want %+v (Go)", long, gotW, err, w)
	}
	if !strings.Contains(d.Logs(), `"msg":"draining","running":1`) {
		t.Errorf("drain did not see the running walk:\n%s", d.Logs())
	}
	stopped := logRecord(t, d, "stopped")
	if n, _ := stopped["invocations"].(float64); n != 4 {
		t.Errorf("stopped record: %v invocations, want 4", stopped["invocations"])
	}
	t.Logf("test took %v", time.Since(start))
}

// logRecord is the daemon's first JSON log record with msg.
func logRecord(t *testing.T, d *daemonProc, msg string) map[string]any {
	t.Helper()
	for line := range strings.SplitSeq(d.Logs(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
			return rec
		}
	}
	t.Fatalf("bcshipd logged no %q record:\n%s", msg, d.Logs())
	return nil
}

// metric reads bcship_NAME from the daemon's /metrics.
func metric(t *testing.T, httpAddr, name string) uint64 {
	t.Helper()
	code, body := httpGet(t, httpAddr, "/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for line := range strings.SplitSeq(body, "\n") {
		if v, ok := strings.CutPrefix(line, "bcship_"+name+" "); ok {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				t.Fatalf("/metrics bcship_%s: %q", name, v)
			}
			return n
		}
	}
	t.Fatalf("/metrics has no bcship_%s:\n%s", name, body)
	return 0
}

// originRDMA is n's RDMA transport.
func originRDMA(t *testing.T, n *bc.Node) *rdma.Transport {
	t.Helper()
	rt, ok := n.Transport().(*rdma.Transport)
	if !ok {
		t.Fatalf("node %d runs on %T, not RDMA", n.ID(), n.Transport())
	}
	return rt
}

// waitConn waits until rt's RDMA connection to peer is ready.
func waitConn(t *testing.T, rt *rdma.Transport, peer uint32) rdma.ConnInfo {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		for _, c := range rt.Conns() {
			if c.Peer == peer && c.Ready {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ready RDMA connection to node %d after 10 s: %+v", peer, rt.Conns())
		}
	}
}

// waitRegion waits until rt knows peer's region: only then are Gets of
// it one-sided.
func waitRegion(t *testing.T, rt *rdma.Transport, peer uint32, region string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		for _, r := range rt.RemoteRegions(peer) {
			if r.Name == region {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("region %q of node %d unknown after 10 s: %+v", region, peer, rt.RemoteRegions(peer))
		}
	}
}
