package shm

import (
	"encoding/binary"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bcship/bcship/transport"
	"github.com/bcship/bcship/transport/internal/transporttest"
	"github.com/bcship/bcship/transport/tcp"
	"github.com/bcship/bcship/wire"
)

// answers is a Handler that closes the channel registered for an AM's
// sequence number and notes whether it ran inside Drive.
type answers struct {
	mu      sync.Mutex
	waiting map[uint64]chan struct{}
	got     map[uint64]int
	driven  int // deliveries made on a goroutine inside Drive
}

func (a *answers) expect(seq uint64) chan struct{} {
	ch := make(chan struct{})
	a.mu.Lock()
	a.waiting[seq] = ch
	a.mu.Unlock()
	return ch
}

func (a *answers) HandleMessage(_ uint32, _ wire.Header, m wire.Message) {
	am, ok := m.(*wire.AM)
	if !ok || len(am.Arg) < 8 {
		return
	}
	seq := binary.LittleEndian.Uint64(am.Arg)
	buf := make([]byte, 4096)
	inDrive := strings.Contains(string(buf[:runtime.Stack(buf, false)]), "shm.(*Transport).Drive")
	a.mu.Lock()
	defer a.mu.Unlock()
	a.got[seq]++
	if inDrive {
		a.driven++
	}
	if ch := a.waiting[seq]; ch != nil {
		delete(a.waiting, seq)
		close(ch)
	}
}

func (a *answers) PeerDown(uint32, error) {}

// drivePair starts node 1 with an answers handler and node 2 echoing every
// message back.
func drivePair(t *testing.T) (*Transport, *answers) {
	t.Helper()
	dir := t.TempDir()
	ans := &answers{waiting: map[uint64]chan struct{}{}, got: map[uint64]int{}}
	a, err := New(Config{TCP: tcp.Config{Self: 1, Listen: "127.0.0.1:0", Handler: ans}, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	e := &echo{}
	b, err := New(Config{TCP: tcp.Config{Self: 2, Listen: "127.0.0.1:0", Handler: e}, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	e.t = b
	a.SetPeerAddr(2, b.Addr().String())
	b.SetPeerAddr(1, a.Addr().String())
	if err := a.Connect(2); err != nil {
		t.Fatal(err)
	}
	return a, ans
}

// roundTrip sends seq to node 2 and waits for the echo, driving first.
func roundTrip(t *testing.T, a *Transport, ans *answers, seq uint64) bool {
	done := ans.expect(seq)
	if err := a.Send(2, wire.Header{}, seqAM(seq, 56)); err != nil {
		t.Error(err)
		return false
	}
	drove := a.Drive(2, done)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Errorf("echo %d never arrived (drove: %v)", seq, drove)
	}
	return drove
}

// A caller that drives receives its answer on its own goroutine; once it
// stops, the receive loop takes over again and misses nothing.
func TestDrive(t *testing.T) {
	a, ans := drivePair(t)
	const n = 500
	drove := 0
	for i := range uint64(n) {
		if roundTrip(t, a, ans, i) {
			drove++
		}
	}
	if _, ok := conns(a, 2); !ok {
		t.Fatal("the pair is not on shared memory")
	}
	ans.mu.Lock()
	driven := ans.driven
	ans.mu.Unlock()
	t.Logf("%d of %d answers seen by Drive, %d delivered inside it", drove, n, driven)
	if drove == 0 || driven == 0 {
		t.Fatalf("no answer was delivered inside Drive (%d driven, %d delivered there)", drove, driven)
	}
	if got := a.rcv.drives.Load(); got != uint64(drove) {
		t.Errorf("drives counter %d, Drive reported %d", got, drove)
	}

	// Nobody drives now: the loop must be back.
	var chans []chan struct{}
	for i := range uint64(10) {
		seq := n + i
		chans = append(chans, ans.expect(seq))
		if err := a.Send(2, wire.Header{}, seqAM(seq, 56)); err != nil {
			t.Fatal(err)
		}
	}
	for i, ch := range chans {
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("echo %d after the drives never arrived: the receive loop did not resume", n+i)
		}
	}
	ans.mu.Lock()
	defer ans.mu.Unlock()
	for seq := range uint64(n + 10) {
		if ans.got[seq] != 1 {
			t.Errorf("echo %d delivered %d times", seq, ans.got[seq])
		}
	}
}

// Several callers driving at once share the rings: each answer is
// delivered once, to whoever polls, and every caller sees its own.
func TestDriveConcurrent(t *testing.T) {
	a, ans := drivePair(t)
	const callers, each = 4, 200
	var wg sync.WaitGroup
	for c := range uint64(callers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range uint64(each) {
				roundTrip(t, a, ans, c*each+i)
			}
		}()
	}
	wg.Wait()
	ans.mu.Lock()
	defer ans.mu.Unlock()
	for seq := range uint64(callers * each) {
		if ans.got[seq] != 1 {
			t.Errorf("echo %d delivered %d times", seq, ans.got[seq])
		}
	}
}

// Drive gives up on an answer that does not come, rather than hold the
// processor, and returns at once on a closed transport.
func TestDriveGivesUp(t *testing.T) {
	a, _ := drivePair(t)
	never := make(chan struct{})
	t0 := time.Now()
	if a.Drive(2, never) {
		t.Fatal("Drive reported an answer that never came")
	}
	t.Logf("gave up after %v", time.Since(t0))
	a.Close()
	if a.Drive(2, never) {
		t.Fatal("Drive on a closed transport reported an answer")
	}
}

var _ transport.Driver = (*Transport)(nil)

// A peer reached over TCP is answered through the TCP read loop, which
// waits in the netpoller: Drive declines at once for it (and for a peer it
// does not know) rather than spin over the rings and delay that answer.
func TestDriveDeclinesTCPPeer(t *testing.T) {
	a, _ := start(t, 1, t.TempDir(), nil)
	rb := transporttest.NewRecorder()
	b, err := tcp.New(tcp.Config{Self: 2, Listen: "127.0.0.1:0", Handler: rb})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	a.SetPeerAddr(2, b.Addr().String())
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
			if a.Drive(peer, never) {
				t.Fatalf("Drive for peer %d reported an answer", peer)
			}
			fastest = min(fastest, time.Since(t0))
		}
		if fastest >= driveFor {
			t.Errorf("Drive for peer %d spun (fastest return %v) instead of declining", peer, fastest)
		}
	}
}
