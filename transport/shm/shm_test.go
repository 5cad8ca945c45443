package shm

import (
	"bytes"
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

// start runs a Transport as node id with its segments in dir.
func start(t *testing.T, id uint32, dir string, mod func(*Config)) (*Transport, *transporttest.Recorder) {
	t.Helper()
	r := transporttest.NewRecorder()
	cfg := Config{TCP: tcp.Config{Self: id, Listen: "127.0.0.1:0", Handler: r}, Dir: dir}
	if mod != nil {
		mod(&cfg)
	}
	tr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr, r
}

// pair starts nodes 1 and 2 sharing dir, each knowing the other.
func pair(t *testing.T, mod1, mod2 func(*Config)) (a *Transport, ra *transporttest.Recorder, b *Transport, rb *transporttest.Recorder) {
	t.Helper()
	dir := t.TempDir()
	a, ra = start(t, 1, dir, mod1)
	b, rb = start(t, 2, dir, mod2)
	a.SetPeerAddr(2, b.Addr().String())
	b.SetPeerAddr(1, a.Addr().String())
	return
}

func seqAM(seq uint64, n int) *wire.AM {
	arg := make([]byte, 8+n)
	binary.LittleEndian.PutUint64(arg, seq)
	for i := 8; i < len(arg); i++ {
		arg[i] = byte(seq) + byte(i)
	}
	return &wire.AM{Handler: "seq", Arg: arg}
}

// checkSeq checks that msgs are seqAM 0, 1, … with their bytes intact.
func checkSeq(t *testing.T, msgs []*wire.AM, sizes func(uint64) int) {
	t.Helper()
	for i, m := range msgs {
		want := seqAM(uint64(i), sizes(uint64(i)))
		if !bytes.Equal(m.Arg, want.Arg) {
			got := uint64(0)
			if len(m.Arg) >= 8 {
				got = binary.LittleEndian.Uint64(m.Arg)
			}
			t.Fatalf("message %d is message %d (%d bytes), or its bytes changed", i, got, len(m.Arg))
		}
	}
}

// connected sends node 2 one message from a, waits for it at rb, and
// returns a's shared-memory connection to node 2.
func connected(t *testing.T, a *Transport, rb *transporttest.Recorder) *conn {
	t.Helper()
	if err := a.Send(2, wire.Header{}, seqAM(0, 0)); err != nil {
		t.Fatal(err)
	}
	rb.Wait(t, 5*time.Second, "the message", func() bool { return len(rb.Msgs) == 1 })
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.peers[2].Conn
}

func conns(t *Transport, peer uint32) (ConnInfo, bool) {
	for _, c := range t.Conns() {
		if c.Peer == peer {
			return c, true
		}
	}
	return ConnInfo{}, false
}

// Small and large frames (larger than the ring, streamed through it) both
// ways, in order, and they go through the rings, not TCP.
func TestSendReceive(t *testing.T) {
	small := func(cfg *Config) { cfg.RingSize = MinRingSize }
	a, ra, b, rb := pair(t, small, small)
	size := func(seq uint64) int {
		if seq%10 == 9 {
			return 3*MinRingSize + int(seq)
		}
		return int(seq % 100)
	}
	const n = 300
	tcpBefore := a.tcp.Stats().FramesSent
	var wg sync.WaitGroup
	for _, s := range []struct {
		from *Transport
		to   uint32
	}{{a, 2}, {b, 1}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range uint64(n) {
				if err := s.from.Send(s.to, wire.Header{}, seqAM(i, size(i))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	rb.Wait(t, 10*time.Second, "node 2's messages", func() bool { return len(rb.Msgs) == n })
	ra.Wait(t, 10*time.Second, "node 1's messages", func() bool { return len(ra.Msgs) == n })
	checkSeq(t, rb.Msgs, size)
	checkSeq(t, ra.Msgs, size)
	ca, ok := conns(a, 2)
	if !ok {
		t.Fatal("node 1 has no shared-memory connection to node 2")
	}
	if ca.FramesSent < n || ca.RingSize != MinRingSize {
		t.Fatalf("node 1's connection: %+v; want ≥ %d frames sent through a %d-byte ring", ca, n, MinRingSize)
	}
	// TCP carried the setup and maybe heartbeats, not the messages.
	if d := a.tcp.Stats().FramesSent - tcpBefore; d > 20 {
		t.Fatalf("node 1 sent %d frames over TCP", d)
	}
	if s := a.Stats(); s.FramesSent < n {
		t.Fatalf("Stats counts %d frames sent, want ≥ %d", s.FramesSent, n)
	}
}

// Node 2 starts sending before the connection is up and goes on while
// node 1 sets it up: its frames move from TCP to the ring mid-stream and
// must still arrive in order.
func TestOrderAcrossSwitch(t *testing.T) {
	for round := range 5 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			a, ra, b, rb := pair(t, nil, func(cfg *Config) {})
			const n = 2000
			done := make(chan error, 1)
			go func() {
				for i := range uint64(n) {
					if err := b.Send(1, wire.Header{}, seqAM(i, 0)); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			if err := a.Send(2, wire.Header{}, seqAM(0, 0)); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			ra.Wait(t, 10*time.Second, "node 2's messages", func() bool { return len(ra.Msgs) == n })
			rb.Wait(t, 5*time.Second, "node 1's message", func() bool { return len(rb.Msgs) == 1 })
			checkSeq(t, ra.Msgs, func(uint64) int { return 0 })
			if _, ok := conns(b, 1); !ok {
				t.Fatal("no shared-memory connection")
			}
		})
	}
}

// Both sides set up at once: one connection results, and nothing is lost.
func TestSimultaneousSetup(t *testing.T) {
	for round := range 5 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			a, ra, b, rb := pair(t, nil, nil)
			var wg sync.WaitGroup
			for _, s := range []struct {
				from *Transport
				to   uint32
			}{{a, 2}, {b, 1}} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range uint64(50) {
						if err := s.from.Send(s.to, wire.Header{}, seqAM(i, 10)); err != nil {
							t.Error(err)
						}
					}
				}()
			}
			wg.Wait()
			ra.Wait(t, 5*time.Second, "messages at 1", func() bool { return len(ra.Msgs) == 50 })
			rb.Wait(t, 5*time.Second, "messages at 2", func() bool { return len(rb.Msgs) == 50 })
			checkSeq(t, ra.Msgs, func(uint64) int { return 10 })
			checkSeq(t, rb.Msgs, func(uint64) int { return 10 })
			if len(a.Conns()) != 1 || len(b.Conns()) != 1 {
				t.Fatalf("connections: %d and %d, want 1 each", len(a.Conns()), len(b.Conns()))
			}
		})
	}
}

// Every way shared memory can be unavailable leaves the pair on TCP, with
// no error to the sender.
func TestFallbackToTCP(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T) (*Transport, *transporttest.Recorder)
	}{
		{"segment cannot be opened", func(t *testing.T) (*Transport, *transporttest.Recorder) {
			// Another directory stands for another mount namespace: the
			// acceptor does not find the file.
			a, _ := start(t, 1, t.TempDir(), nil)
			b, rb := start(t, 2, t.TempDir(), nil)
			a.SetPeerAddr(2, b.Addr().String())
			return a, rb
		}},
		{"other host", func(t *testing.T) (*Transport, *transporttest.Recorder) {
			a, _, b, rb := pair(t, nil, nil)
			b.host = "boot:another-machine"
			return a, rb
		}},
		{"peer without shared memory", tcpOnlyPeer},
		{"no such directory", func(t *testing.T) (*Transport, *transporttest.Recorder) {
			a, _ := start(t, 1, t.TempDir()+"/missing", nil)
			b, rb := start(t, 2, t.TempDir(), nil)
			a.SetPeerAddr(2, b.Addr().String())
			return a, rb
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, rb := tc.run(t)
			for i := range uint64(20) {
				if err := a.Send(2, wire.Header{}, seqAM(i, 5)); err != nil {
					t.Fatal(err)
				}
			}
			rb.Wait(t, 5*time.Second, "the messages over TCP", func() bool { return len(rb.Msgs) == 20 })
			checkSeq(t, rb.Msgs, func(uint64) int { return 5 })
			if cs := a.Conns(); len(cs) != 0 {
				t.Fatalf("shared-memory connections: %+v", cs)
			}
			a.mu.Lock()
			ps := a.peers[2]
			tcpOnly := ps != nil && ps.TCPOnly
			a.mu.Unlock()
			if ps == nil || (a.enabled && !tcpOnly) {
				t.Fatal("the peer is not marked TCP-only: every send would try again")
			}
		})
	}
	t.Run("no segment file left behind", func(t *testing.T) {
		dir := t.TempDir()
		a, _ := start(t, 1, dir, nil)
		b, rb := start(t, 2, t.TempDir(), nil)
		a.SetPeerAddr(2, b.Addr().String())
		a.Send(2, wire.Header{}, seqAM(0, 0))
		rb.Wait(t, 5*time.Second, "the message", func() bool { return len(rb.Msgs) == 1 })
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Fatalf("%s holds %v", dir, ents)
		}
	})
}

// The peer goes away: the node hears PeerDown within a second, sends fail
// with ErrPeerDown, and the segment is unmapped.
func TestPeerDown(t *testing.T) {
	a, ra, b, rb := pair(t, nil, nil)
	c := connected(t, a, rb)
	t0 := time.Now()
	b.Close()
	ra.Wait(t, time.Second, "PeerDown", func() bool { return len(ra.Downs) > 0 })
	t.Logf("PeerDown after %v", time.Since(t0))
	if !errors.Is(ra.Downs[0], transport.ErrPeerDown) {
		t.Fatalf("PeerDown with %v", ra.Downs[0])
	}
	if err := a.Send(2, wire.Header{}, seqAM(1, 0)); !errors.Is(err, transport.ErrPeerDown) {
		t.Fatalf("send to the dead peer: %v, want ErrPeerDown", err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		c.mu.Lock()
		gone := c.seg.mem == nil
		c.mu.Unlock()
		if gone {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the segment is still mapped")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	if n := len(ra.Downs); n != 1 {
		t.Fatalf("PeerDown heard %d times", n)
	}
}

// A handler that blocks fills the ring; frames queue (Send never blocks),
// then the queue limit; once the handler goes on, everything queued
// arrives in order.
func TestRingFullQueues(t *testing.T) {
	a, _, _, rb := pair(t, func(cfg *Config) {
		cfg.RingSize = MinRingSize
		cfg.MaxQueued = 64 << 10
	}, func(cfg *Config) { cfg.RingSize = MinRingSize })
	rb.Block = make(chan struct{})
	var unblock sync.Once
	release := func() { unblock.Do(func() { close(rb.Block) }) }
	t.Cleanup(release) // before the transports close, which waits for the handler
	var sent uint64
	for ; ; sent++ {
		done := make(chan error, 1)
		go func() { done <- a.Send(2, wire.Header{}, seqAM(sent, 1000)) }()
		var err error
		select {
		case err = <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Send blocked on a full ring")
		}
		if errors.Is(err, ErrQueueFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if sent < 60 {
		t.Fatalf("queue full after %d frames of 1 KiB (ring 4 KiB + 64 KiB queue)", sent)
	}
	ci, _ := conns(a, 2)
	if ci.Queued == 0 || ci.FullWaits == 0 {
		t.Fatalf("connection %+v: nothing queued", ci)
	}
	release()
	rb.Wait(t, 10*time.Second, "the queued frames", func() bool { return len(rb.Msgs) == int(sent) })
	checkSeq(t, rb.Msgs, func(uint64) int { return 1000 })
}

// A peer that scribbles over the ring loses the connection (both sides
// hear PeerDown), and the next send sets up a fresh one.
func TestCorruptRing(t *testing.T) {
	a, ra, b, rb := pair(t, nil, nil)
	c := connected(t, a, rb)
	c.mu.Lock()
	c.tx.head.Store(c.tx.pos + 1<<40) // "published" far more than the ring holds
	futexWake(c.tx.sleep)
	c.mu.Unlock()
	rb.Wait(t, 2*time.Second, "PeerDown at node 2", func() bool { return len(rb.Downs) == 1 })
	if !errors.Is(rb.Downs[0], ErrCorrupt) || !errors.Is(rb.Downs[0], transport.ErrPeerDown) {
		t.Fatalf("node 2's PeerDown: %v", rb.Downs[0])
	}
	ra.Wait(t, 2*time.Second, "PeerDown at node 1", func() bool { return len(ra.Downs) == 1 })
	// The TCP link stands: the next message sets up a new connection.
	if err := a.Send(2, wire.Header{}, seqAM(1, 0)); err != nil {
		t.Fatal(err)
	}
	rb.Wait(t, 5*time.Second, "the next message", func() bool { return len(rb.Msgs) == 2 })
	if _, ok := conns(a, 2); !ok {
		t.Fatal("no new connection")
	}
	_ = b
}

// An idle connection sleeps on its futex, and a frame wakes it.
func TestIdleSleepsAndWakes(t *testing.T) {
	a, _, b, rb := pair(t, nil, nil)
	if err := a.Send(2, wire.Header{}, seqAM(0, 0)); err != nil {
		t.Fatal(err)
	}
	rb.Wait(t, 5*time.Second, "the message", func() bool { return len(rb.Msgs) == 1 })
	time.Sleep(50 * time.Millisecond) // well past SpinFor
	if b.Sleeps() == 0 {
		t.Fatal("the receive loop never slept")
	}
	t0 := time.Now()
	if err := a.Send(2, wire.Header{}, seqAM(1, 0)); err != nil {
		t.Fatal(err)
	}
	rb.Wait(t, 5*time.Second, "the second message", func() bool { return len(rb.Msgs) == 2 })
	if d := time.Since(t0); d > 50*time.Millisecond {
		t.Fatalf("a sleeping receiver took %v to wake (the futex timeout is %v)", d, sleepFor)
	}
}

// A node with two peers, asleep: a frame from either wakes its receive
// loop at once, with futex_waitv and with the helper goroutines that stand
// in for it on kernels before 5.16.
func TestSleepOnManyRings(t *testing.T) {
	for _, waitv := range []bool{true, false} {
		t.Run(fmt.Sprintf("waitv=%v", waitv), func(t *testing.T) {
			if waitv && !haveFutexWaitv() {
				t.Skip("SKIP (loud): no futex_waitv in this kernel")
			}
			dir := t.TempDir()
			a, ra := start(t, 1, dir, nil)
			a.rcv.waitv.Store(waitv)
			peers := map[uint32]*Transport{}
			for _, id := range []uint32{2, 3} {
				p, _ := start(t, id, dir, nil)
				p.SetPeerAddr(1, a.Addr().String())
				peers[id] = p
			}
			want := 0
			for round := range 10 {
				for _, id := range []uint32{2, 3} {
					time.Sleep(2 * time.Millisecond) // well past SpinFor: a sleeps
					slept := a.Sleeps()
					t0 := time.Now()
					if err := peers[id].Send(1, wire.Header{}, seqAM(uint64(want), 0)); err != nil {
						t.Fatal(err)
					}
					want++
					ra.Wait(t, 5*time.Second, "the message", func() bool { return len(ra.Msgs) == want })
					if d := time.Since(t0); d > 50*time.Millisecond {
						t.Fatalf("round %d, from %d: a sleeping receiver took %v to wake (the futex timeout is %v)", round, id, d, sleepFor)
					}
					if round > 0 && slept == 0 {
						t.Fatal("the receive loop never slept")
					}
				}
			}
			if len(a.Conns()) != 2 {
				t.Fatalf("node 1 has %d connections, want 2", len(a.Conns()))
			}
		})
	}
}

// tcpOnlyPeer is node 1 on shared memory, with node 2, a plain TCP
// transport, as its peer.
func tcpOnlyPeer(t *testing.T) (*Transport, *transporttest.Recorder) {
	a, _ := start(t, 1, t.TempDir(), nil)
	rb := transporttest.NewRecorder()
	b, err := tcp.New(tcp.Config{Self: 2, Listen: "127.0.0.1:0", Handler: rb})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	a.SetPeerAddr(2, b.Addr().String())
	return a, rb
}
