package tcp

import (
	"bufio"
	"errors"
	"io"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bcship/bcship/transport"
	"github.com/bcship/bcship/wire"
)

// replies is a Handler that closes the channel registered for a
// GET_REPLY's request id and counts deliveries made inside Drive.
type replies struct {
	mu      sync.Mutex
	waiting map[uint64]chan struct{}
	got     map[uint64]int
	driven  int
	fast    bool // benchmarks: do not look at the stack
}

func newReplies() *replies {
	return &replies{waiting: map[uint64]chan struct{}{}, got: map[uint64]int{}}
}

func (r *replies) expect(id uint64) chan struct{} {
	ch := make(chan struct{})
	r.mu.Lock()
	r.waiting[id] = ch
	r.mu.Unlock()
	return ch
}

func (r *replies) HandleMessage(_ uint32, h wire.Header, m wire.Message) {
	if _, ok := m.(*wire.GetReply); !ok {
		return
	}
	inDrive := false
	if !r.fast {
		buf := make([]byte, 4096)
		inDrive = strings.Contains(string(buf[:runtime.Stack(buf, false)]), "tcp.(*Transport).Drive")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got[h.RequestID]++
	if inDrive {
		r.driven++
	}
	if ch := r.waiting[h.RequestID]; ch != nil {
		delete(r.waiting, h.RequestID)
		close(ch)
	}
}

func (r *replies) PeerDown(uint32, error) {}

// answerer answers every GET with a GET_REPLY and keeps nothing.
type answerer struct{ t *Transport }

func (a *answerer) HandleMessage(from uint32, h wire.Header, m wire.Message) {
	if _, ok := m.(*wire.Get); ok {
		a.t.Send(from, wire.Header{RequestID: h.RequestID}, &wire.GetReply{})
	}
}

func (a *answerer) PeerDown(uint32, error) {}

// drivePair starts node 1 (replies) and node 2 (answering GETs), both
// busy-polling, and connects them.
func drivePair(t *testing.T) (*Transport, *replies) {
	t.Helper()
	rep := newReplies()
	a, err := New(Config{Self: 1, Listen: "127.0.0.1:0", Handler: rep, BusyPoll: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	ans := &answerer{}
	b, err := New(Config{Self: 2, Listen: "127.0.0.1:0", Handler: ans, BusyPoll: true})
	if err != nil {
		t.Fatal(err)
	}
	ans.t = b
	t.Cleanup(func() { b.Close() })
	a.SetPeerAddr(2, b.Addr().String())
	if err := a.Connect(2); err != nil {
		t.Fatal(err)
	}
	return a, rep
}

// roundTrip sends GET id to node 2 and waits for its reply, driving first.
func roundTrip(t *testing.T, a *Transport, rep *replies, id uint64) bool {
	done := rep.expect(id)
	if err := a.Send(2, wire.Header{RequestID: id}, &wire.Get{Region: "r"}); err != nil {
		t.Error(err)
		return false
	}
	drove := a.Drive(2, done)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Errorf("reply %d never arrived (drove: %v)", id, drove)
	}
	return drove
}

// A caller that drives reads its answer from the socket on its own
// goroutine; once it stops, the read loop takes over again and misses
// nothing.
func TestDrive(t *testing.T) {
	a, rep := drivePair(t)
	const n = 500
	drove := 0
	for i := range uint64(n) {
		if roundTrip(t, a, rep, i+1) {
			drove++
		}
	}
	rep.mu.Lock()
	driven := rep.driven
	rep.mu.Unlock()
	t.Logf("%d of %d replies seen by Drive, %d delivered inside it", drove, n, driven)
	if drove == 0 || driven == 0 {
		t.Fatalf("no reply was delivered inside Drive (%d seen, %d delivered there)", drove, driven)
	}

	// Nobody drives now: the read loop must be back.
	var chans []chan struct{}
	for i := range uint64(10) {
		id := n + 1 + i
		chans = append(chans, rep.expect(id))
		if err := a.Send(2, wire.Header{RequestID: id}, &wire.Get{Region: "r"}); err != nil {
			t.Fatal(err)
		}
	}
	for i, ch := range chans {
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("reply %d after the drives never arrived: the read loop did not resume", n+1+i)
		}
	}
	rep.mu.Lock()
	defer rep.mu.Unlock()
	for id := range uint64(n + 10) {
		if rep.got[id+1] != 1 {
			t.Errorf("reply %d delivered %d times", id+1, rep.got[id+1])
		}
	}
}

// Callers driving at once share the connections: each reply is delivered
// once, and every caller gets its own.
func TestDriveConcurrent(t *testing.T) {
	a, rep := drivePair(t)
	const callers, each = 4, 200
	var wg sync.WaitGroup
	for c := range uint64(callers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range uint64(each) {
				roundTrip(t, a, rep, 1+c*each+i)
			}
		}()
	}
	wg.Wait()
	rep.mu.Lock()
	defer rep.mu.Unlock()
	for id := range uint64(callers * each) {
		if rep.got[id+1] != 1 {
			t.Errorf("reply %d delivered %d times", id+1, rep.got[id+1])
		}
	}
}

// Without BusyPoll a node has asked not to spin: Drive declines at once.
// With it, Drive gives up on an answer that does not come, and on a
// closed transport returns at once.
func TestDriveDeclinesAndGivesUp(t *testing.T) {
	quiet, _ := start(t, 3, nil)
	never := make(chan struct{})
	if quiet.Drive(2, never) {
		t.Fatal("Drive without BusyPoll reported an answer")
	}
	a, _ := drivePair(t)
	if a.Drive(2, never) {
		t.Fatal("Drive reported an answer that never came")
	}
	a.Close()
	if a.Drive(2, never) {
		t.Fatal("Drive on a closed transport reported an answer")
	}
}

// A connection that loses its framing while a caller drives is answered
// with a typed ERROR and dropped, wherever it was read; the caller's own
// round trips go on.
func TestDriveBadFrame(t *testing.T) {
	a, rep := drivePair(t)
	raw, err := net.Dial("tcp", a.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	hello, err := wire.AppendFrame(nil, wire.Header{Source: 9}, &wire.Hello{Node: 9})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Write(hello); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(raw)
	if f, err := wire.ReadFrame(br, 0, nil); err != nil || f.Type != wire.TypeHello {
		t.Fatalf("no HELLO back: %v %v", f.Type, err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // a caller driving all along
		defer wg.Done()
		for id := uint64(1); ; id++ {
			select {
			case <-stop:
				return
			default:
			}
			roundTrip(t, a, rep, id)
		}
	}()
	time.Sleep(5 * time.Millisecond)
	if _, err := raw.Write([]byte(strings.Repeat("not a frame at all, not at all. ", 2))); err != nil {
		t.Fatal(err)
	}
	raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	var answer *wire.ErrorMsg
	for answer == nil {
		f, err := wire.ReadFrame(br, 0, nil)
		if err != nil {
			t.Fatalf("no ERROR before the connection ended: %v", err)
		}
		if f.Type != wire.TypeError {
			continue // a heartbeat
		}
		m, err := wire.Decode(f.Type, f.Payload)
		if err != nil {
			t.Fatal(err)
		}
		answer = m.(*wire.ErrorMsg)
	}
	if answer.Code != wire.CodeBadFrame {
		t.Errorf("answered %v, want %v", answer.Code, wire.CodeBadFrame)
	}
	for {
		_, err := wire.ReadFrame(br, 0, nil)
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err) {
			break
		}
		if err != nil {
			t.Fatalf("connection not dropped: %v", err)
		}
	}
	close(stop)
	wg.Wait()
	if got := a.Stats().BadFrames; got == 0 {
		t.Error("bad frame not counted")
	}
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && !ne.Timeout()
}

var _ transport.Driver = (*Transport)(nil)

// BenchmarkDrive is the transport's round trip when the caller drives
// (BusyPoll): a GET answered at once by the peer's read loop. It is the
// floor under a node's invoke round trip over TCP.
func BenchmarkDrive(b *testing.B) {
	rep := newReplies()
	rep.fast = true
	a, err := New(Config{Self: 1, Listen: "127.0.0.1:0", Handler: rep, BusyPoll: true})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	ans := &answerer{}
	y, err := New(Config{Self: 2, Listen: "127.0.0.1:0", Handler: ans, BusyPoll: true})
	if err != nil {
		b.Fatal(err)
	}
	defer y.Close()
	ans.t = y
	a.SetPeerAddr(2, y.Addr().String())
	if err := a.Connect(2); err != nil {
		b.Fatal(err)
	}
	get := &wire.Get{Region: "r"}
	id := uint64(0)
	var rtts []time.Duration
	defer func() {
		slices.Sort(rtts)
		b.ReportMetric(float64(rtts[len(rtts)/2].Nanoseconds()), "p50-ns")
	}()
	for b.Loop() {
		t0 := time.Now()
		id++
		done := rep.expect(id)
		if err := a.Send(2, wire.Header{RequestID: id}, get); err != nil {
			b.Fatal(err)
		}
		if !a.Drive(2, done) {
			<-done
		}
		rtts = append(rtts, time.Since(t0))
	}
}
