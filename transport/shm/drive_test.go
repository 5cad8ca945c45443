package shm

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/bcship/bcship/transport"
	"github.com/bcship/bcship/transport/internal/transporttest"
	"github.com/bcship/bcship/transport/tcp"
	"github.com/bcship/bcship/wire"
)

// answerAMs hands every AM's sequence number to Answers.
type answerAMs struct{ *transporttest.Answers }

func (a answerAMs) HandleMessage(_ uint32, _ wire.Header, m wire.Message) {
	if am, ok := m.(*wire.AM); ok && len(am.Arg) >= 8 {
		a.Arrived(binary.LittleEndian.Uint64(am.Arg))
	}
}

func (a answerAMs) PeerDown(uint32, error) {}

// echoPair starts node 1 with handler h and node 2 echoing every message
// back, both with shared memory in one directory (busy: busy-polling), and
// tells each the other's address; it returns node 1.
func echoPair(t *testing.T, h transport.Handler, busy bool) *Transport {
	t.Helper()
	dir := t.TempDir()
	a, err := New(Config{TCP: tcp.Config{Self: 1, Listen: "127.0.0.1:0", Handler: h, BusyPoll: busy}, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	e := &echo{}
	b, err := New(Config{TCP: tcp.Config{Self: 2, Listen: "127.0.0.1:0", Handler: e, BusyPoll: busy}, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	e.t = b
	a.SetPeerAddr(2, b.Addr().String())
	b.SetPeerAddr(1, a.Addr().String())
	return a
}

// drivePair starts node 1, whose answers go to the returned Answers, and
// node 2 echoing every message back, on shared memory.
func drivePair(t *testing.T) (*Transport, *transporttest.Answers, transporttest.DriveFuncs) {
	t.Helper()
	ans := transporttest.NewAnswers("shm.(*Transport).Drive")
	a := echoPair(t, answerAMs{ans}, false)
	if err := a.Connect(2); err != nil {
		t.Fatal(err)
	}
	f := transporttest.DriveFuncs{
		Send:  func(id uint64) error { return a.Send(2, wire.Header{}, seqAM(id, 56)) },
		Drive: func(done <-chan struct{}) bool { return a.Drive(2, transporttest.Closed(done)) },
	}
	return a, ans, f
}

// A caller that drives receives its answer on its own goroutine; once it
// stops, the receive loop takes over again and misses nothing.
func TestDrive(t *testing.T) {
	a, ans, f := drivePair(t)
	if _, ok := conns(a, 2); !ok {
		t.Fatal("the pair is not on shared memory")
	}
	before := a.rcv.drives.Load()
	ans.CheckDrive(t, f, 500)
	if a.rcv.drives.Load() == before {
		t.Error("the drives counter did not move")
	}
}

// Several callers driving at once share the rings: each answer is
// delivered once, to whoever polls, and every caller sees its own.
func TestDriveConcurrent(t *testing.T) {
	_, ans, f := drivePair(t)
	ans.CheckDriveConcurrent(t, f, 4, 200)
}

// Drive gives up on an answer that does not come, rather than hold the
// processor, and returns at once on a closed transport.
func TestDriveGivesUp(t *testing.T) {
	a, _, _ := drivePair(t)
	never := make(chan struct{})
	t0 := time.Now()
	if a.Drive(2, transporttest.Closed(never)) {
		t.Fatal("Drive reported an answer that never came")
	}
	t.Logf("gave up after %v", time.Since(t0))
	a.Close()
	if a.Drive(2, transporttest.Closed(never)) {
		t.Fatal("Drive on a closed transport reported an answer")
	}
}

// A peer reached over TCP is answered through the TCP read loop, which
// waits in the netpoller: Drive declines at once for it (and for a peer it
// does not know) rather than spin over the rings and delay that answer.
func TestDriveDeclinesTCPPeer(t *testing.T) {
	a, rb := tcpOnlyPeer(t)
	if err := a.Send(2, wire.Header{}, seqAM(0, 8)); err != nil {
		t.Fatal(err)
	}
	rb.Wait(t, 5*time.Second, "the message over TCP", func() bool { return len(rb.Msgs) == 1 })
	if _, ok := conns(a, 2); ok {
		t.Fatal("a TCP-only peer got a shared-memory connection")
	}
	never := make(chan struct{})
	for _, peer := range []uint32{2, 99} {
		// A Drive that spins never returns within driveFor; one that
		// declines does, unless the machine preempts it: a few tries.
		fastest := time.Hour
		for range 5 {
			t0 := time.Now()
			if a.Drive(peer, transporttest.Closed(never)) {
				t.Fatalf("Drive for peer %d reported an answer", peer)
			}
			fastest = min(fastest, time.Since(t0))
		}
		if fastest >= driveFor {
			t.Errorf("Drive for peer %d spun (fastest return %v) instead of declining", peer, fastest)
		}
	}
}

var _ transport.Driver = (*Transport)(nil)
