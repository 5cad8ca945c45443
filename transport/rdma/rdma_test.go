package rdma

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/bcship/bcship/transport"
	"github.com/bcship/bcship/transport/internal/transporttest"
	"github.com/bcship/bcship/transport/tcp"
	"github.com/bcship/bcship/wire"
)

func TestMain(m *testing.M) {
	if os.Getenv("BCSHIP_RXE") == "" {
		fmt.Fprintln(os.Stderr, "transport/rdma: NO RDMA DEVICE: every test here SKIPS on the host. "+
			"Run them in the soft-RoCE VM: make rxe-test (go test -exec \"go run ./internal/cmd/rxevm --\" ./transport/rdma/)")
	}
	os.Exit(m.Run())
}

func rxeDevice(t testing.TB) string {
	t.Helper()
	d := os.Getenv("BCSHIP_RXE")
	if d == "" {
		t.Skip("SKIPPED: needs soft-RoCE (BCSHIP_RXE unset); run `make rxe-test` to test transport/rdma in the VM")
	}
	return d
}

type node struct {
	t   *Transport
	rec *transporttest.Recorder
}

func newNode(t testing.TB, id uint32, cfg Config) *node {
	t.Helper()
	rec := transporttest.NewRecorder()
	cfg.Device = rxeDevice(t)
	cfg.TCP = tcp.Config{Self: id, Listen: "127.0.0.1:0", Handler: rec}
	tr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return &node{t: tr, rec: rec}
}

// newPair starts nodes 1 and 2 and sets up their RDMA connection.
func newPair(t testing.TB, cfg Config) (a, b *node) {
	t.Helper()
	a, b = newNode(t, 1, cfg), newNode(t, 2, cfg)
	a.t.SetPeerAddr(2, b.t.Addr().String())
	b.t.SetPeerAddr(1, a.t.Addr().String())
	if err := a.t.Connect(2); err != nil {
		t.Fatal(err)
	}
	waitConn(t, a.t, 2)
	waitConn(t, b.t, 1)
	return a, b
}

func waitConn(t testing.TB, tr *Transport, peer uint32) ConnInfo {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, c := range tr.Conns() {
			if c.Peer == peer && c.Ready {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ready RDMA connection to %d: %+v", peer, tr.Conns())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) + seed
	}
	return b
}

func TestSetup(t *testing.T) {
	a, b := newPair(t, Config{})
	ca, cb := waitConn(t, a.t, 2), waitConn(t, b.t, 1)
	if ca.PeerQPN != cb.QPN || cb.PeerQPN != ca.QPN {
		t.Fatalf("QPNs crossed wrong: %+v %+v", ca, cb)
	}
	if ca.Credits != DefaultRecvSlots || cb.Credits != DefaultRecvSlots {
		t.Fatalf("initial credits %d %d", ca.Credits, cb.Credits)
	}
	t.Logf("node 1 QP %d ↔ node 2 QP %d, GID %v", ca.QPN, cb.QPN, a.t.GID())
}

func TestSimultaneousSetup(t *testing.T) {
	// Both sides dial at once, several times over: one connection must
	// survive on both, without a replacement (which would lose frames in
	// flight and report the peer down).
	for round := range 4 {
		a, b := newNode(t, 1, Config{}), newNode(t, 2, Config{})
		a.t.SetPeerAddr(2, b.t.Addr().String())
		b.t.SetPeerAddr(1, a.t.Addr().String())
		const msgs = 20
		var wg sync.WaitGroup
		for _, x := range []struct {
			n    *node
			peer uint32
		}{{a, 2}, {b, 1}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range msgs {
					if err := x.n.t.Send(x.peer, wire.Header{}, &wire.AM{Handler: "x", Arg: []byte{byte(i)}}); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		for _, n := range []*node{a, b} {
			n.rec.Wait(t, 5*time.Second, "the messages", func() bool { return len(n.rec.Msgs) == msgs })
			n.rec.Mu.Lock()
			for i, m := range n.rec.Msgs {
				if m.Arg[0] != byte(i) {
					t.Errorf("round %d: message %d carries %d: lost or reordered", round, i, m.Arg[0])
				}
			}
			if len(n.rec.Downs) != 0 {
				t.Errorf("round %d: peer reported down: %v", round, n.rec.Downs)
			}
			n.rec.Mu.Unlock()
		}
		ca, cb := waitConn(t, a.t, 2), waitConn(t, b.t, 1)
		if ca.PeerQPN != cb.QPN || cb.PeerQPN != ca.QPN {
			t.Fatalf("round %d: two connections survived: %+v %+v", round, ca, cb)
		}
		a.t.Close()
		b.t.Close()
	}
}

// TestMessageSizes sends frames from 1 byte to 1 MiB both ways, across
// the chunking boundaries, and checks every byte.
func TestMessageSizes(t *testing.T) {
	a, b := newPair(t, Config{})
	sizes := []int{0, 1, 100, DefaultSlotSize - wire.HeaderSize - 100, DefaultSlotSize, DefaultSlotSize + 1,
		3*DefaultSlotSize + 17, 64 << 10, 1 << 20}
	for _, dir := range []struct {
		from, to *node
		peer     uint32
	}{{a, b, 2}, {b, a, 1}} {
		for i, n := range sizes {
			arg := pattern(n, byte(i))
			if err := dir.from.t.Send(dir.peer, wire.Header{RequestID: uint64(i)}, &wire.AM{Handler: "size", Arg: arg}); err != nil {
				t.Fatal(err)
			}
		}
		r := dir.to.rec
		r.Wait(t, 30*time.Second, "the messages", func() bool { return len(r.Msgs) == len(sizes) })
		for i, n := range sizes {
			if got := r.Msgs[i].Arg; !bytes.Equal(got, pattern(n, byte(i))) {
				t.Fatalf("message %d (%d bytes) arrived as %d bytes, content differs", i, n, len(got))
			}
		}
	}
	st := a.t.Stats()
	if st.FramesSent < uint64(len(sizes)) || st.BytesRecv < 1<<20 {
		t.Fatalf("stats %+v", st)
	}
}

// TestManySmall floods both directions at once with small frames: all
// arrive in order, and credits never go negative.
func TestManySmall(t *testing.T) {
	const n = 20000
	a, b := newPair(t, Config{RecvSlots: 16})
	var wg sync.WaitGroup
	for _, x := range []struct {
		n    *node
		peer uint32
	}{{a, 2}, {b, 1}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				arg := binary.LittleEndian.AppendUint64(nil, uint64(i))
				for {
					err := x.n.t.Send(x.peer, wire.Header{}, &wire.AM{Handler: "seq", Arg: arg})
					if errors.Is(err, ErrQueueFull) {
						time.Sleep(time.Millisecond)
						continue
					}
					if err != nil {
						t.Error(err)
						return
					}
					break
				}
			}
		}()
	}
	wg.Wait()
	for _, x := range []*node{a, b} {
		r := x.rec
		r.Wait(t, 60*time.Second, "the messages", func() bool { return len(r.Msgs) >= n })
		r.Mu.Lock()
		for i, m := range r.Msgs {
			if got := binary.LittleEndian.Uint64(m.Arg); got != uint64(i) {
				r.Mu.Unlock()
				t.Fatalf("frame %d carries %d: lost or reordered", i, got)
			}
		}
		if len(r.Msgs) != n {
			t.Fatalf("%d frames, want %d", len(r.Msgs), n)
		}
		r.Mu.Unlock()
	}
	for _, x := range []*node{a, b} {
		for _, c := range x.t.Conns() {
			if c.MinCredits < 0 || c.Credits < 0 || c.Credits > 16 {
				t.Fatalf("credits out of range: %+v", c)
			}
			t.Logf("peer %d: credits %d (min %d), %d credit-only SENDs, %d frames sent, %d received",
				c.Peer, c.Credits, c.MinCredits, c.CreditMsgs, c.FramesSent, c.FramesRecv)
		}
	}
}

// TestReadWrite puts and gets a peer's region one-sided and checks it
// byte for byte on both ends.
func TestReadWrite(t *testing.T) {
	a, b := newNode(t, 1, Config{}), newNode(t, 2, Config{})
	region := make([]byte, 2<<20)
	if err := b.t.RegisterRegion("data", region); err != nil {
		t.Fatal(err)
	}
	a.t.SetPeerAddr(2, b.t.Addr().String())
	if err := a.t.Connect(2); err != nil {
		t.Fatal(err)
	}
	rs := a.t.RemoteRegions(2)
	if len(rs) != 1 || rs[0].Name != "data" || rs[0].Size != uint64(len(region)) {
		t.Fatalf("remote regions %+v", rs)
	}
	ctx := context.Background()
	for i, c := range []struct{ off, n int }{{0, 1}, {3, 100}, {4096, 4096}, {1, 300 << 10}, {1 << 20, 1 << 20}} {
		src := pattern(c.n, byte(i+1))
		if err := a.t.Write(ctx, 2, "data", uint64(c.off), src); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(region[c.off:c.off+c.n], src) {
			t.Fatalf("write %d bytes at %d: region differs", c.n, c.off)
		}
		copy(region[c.off:], pattern(c.n, byte(i+100))) // the target changes it locally
		dst := make([]byte, c.n)
		if err := a.t.Read(ctx, 2, "data", uint64(c.off), dst); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(dst, pattern(c.n, byte(i+100))) {
			t.Fatalf("read %d bytes at %d: differs", c.n, c.off)
		}
	}
	// A region registered later reaches connected peers.
	late := pattern(8192, 9)
	if err := b.t.RegisterRegion("late", late); err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, 8192)
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := a.t.Read(ctx, 2, "late", 0, dst)
		if err == nil {
			break
		}
		if !errors.Is(err, ErrNoRegion) || time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !bytes.Equal(dst, late) {
		t.Fatal("late region differs")
	}
}

func TestBounds(t *testing.T) {
	a, b := newNode(t, 1, Config{}), newNode(t, 2, Config{})
	if err := b.t.RegisterRegion("r", make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	a.t.SetPeerAddr(2, b.t.Addr().String())
	ctx := context.Background()
	for _, c := range []struct {
		region string
		off    uint64
		n      int
		want   error
	}{
		{"r", 4096, 1, ErrOutOfRange}, {"r", 4000, 97, ErrOutOfRange}, {"r", 1 << 63, 1, ErrOutOfRange},
		{"r", ^uint64(0), 2, ErrOutOfRange}, {"nope", 0, 1, ErrNoRegion},
	} {
		err := a.t.Read(ctx, 2, c.region, c.off, make([]byte, c.n))
		var re *RegionError
		if !errors.Is(err, c.want) || !errors.As(err, &re) {
			t.Fatalf("read %d at %d of %q: %v, want %v", c.n, c.off, c.region, err, c.want)
		}
		if err := a.t.Write(ctx, 2, c.region, c.off, make([]byte, c.n)); !errors.Is(err, c.want) {
			t.Fatalf("write: %v", err)
		}
	}
	// The connection survived: the refusals happened at the origin.
	if err := a.t.Read(ctx, 2, "r", 4095, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
}

// TestPeerDown: a peer that closes is reported, and later calls fail
// with ErrPeerDown rather than hang.
func TestPeerDown(t *testing.T) {
	a, b := newPair(t, Config{})
	if err := b.t.RegisterRegion("r", make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	b.t.Close()
	a.rec.Wait(t, 2*time.Second, "PeerDown", func() bool { return len(a.rec.Downs) > 0 })
	t.Logf("PeerDown after %v: %v", time.Since(start), a.rec.Downs[0])
	if !errors.Is(a.rec.Downs[0], transport.ErrPeerDown) {
		t.Fatal(a.rec.Downs[0])
	}
	err := a.t.Send(2, wire.Header{}, &wire.AM{Handler: "x"})
	if !errors.Is(err, transport.ErrPeerDown) {
		t.Fatalf("send after peer close: %v", err)
	}
}

// TestQPFailure kills the peer's QP but not its TCP connection: the next
// one-sided access fails with ErrPeerDown within about a second (retry
// exceeded, or the OpTimeout watchdog: rxe reports nothing here), and the node hears PeerDown.
func TestQPFailure(t *testing.T) {
	a, b := newNode(t, 1, Config{}), newNode(t, 2, Config{})
	if err := b.t.RegisterRegion("r", make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	a.t.SetPeerAddr(2, b.t.Addr().String())
	if err := a.t.Connect(2); err != nil {
		t.Fatal(err)
	}
	b.t.mu.Lock()
	bc := b.t.peers[1].Conn
	b.t.mu.Unlock()
	if err := bc.qp.ToError(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := a.t.Read(context.Background(), 2, "r", 0, make([]byte, 64))
	took := time.Since(start)
	t.Logf("read against a dead QP: %v after %v", err, took)
	if !errors.Is(err, transport.ErrPeerDown) {
		t.Fatalf("got %v", err)
	}
	if took > time.Second { // the issue: ErrPeerDown within 1 s
		t.Fatalf("took %v", took)
	}
	a.rec.Wait(t, time.Second, "PeerDown", func() bool { return len(a.rec.Downs) > 0 })
}

// TestTCPFallback: a plain TCP peer is reached over TCP.
func TestTCPFallback(t *testing.T) {
	a := newNode(t, 1, Config{})
	rec := transporttest.NewRecorder()
	p, err := tcp.New(tcp.Config{Self: 2, Listen: "127.0.0.1:0", Handler: rec})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	a.t.SetPeerAddr(2, p.Addr().String())
	if err := a.t.Send(2, wire.Header{}, &wire.AM{Handler: "x", Arg: []byte("hi")}); err != nil {
		t.Fatal(err)
	}
	rec.Wait(t, 5*time.Second, "the messages", func() bool { return len(rec.Msgs) == 1 })
	if len(a.t.Conns()) != 0 {
		t.Fatalf("RDMA connection to a TCP-only peer: %+v", a.t.Conns())
	}
	if err := a.t.Read(context.Background(), 2, "r", 0, make([]byte, 1)); !errors.Is(err, ErrNoRDMA) {
		t.Fatalf("read from a TCP-only peer: %v", err)
	}
}
