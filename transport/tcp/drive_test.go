package tcp

import (
	"bufio"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bcship/bcship/transport"
	"github.com/bcship/bcship/transport/internal/transporttest"
	"github.com/bcship/bcship/wire"
)

// answerReplies hands every GET_REPLY's request id to Answers.
type answerReplies struct{ *transporttest.Answers }

func (a answerReplies) HandleMessage(_ uint32, h wire.Header, m wire.Message) {
	if _, ok := m.(*wire.GetReply); ok {
		a.Arrived(h.RequestID)
	}
}

func (a answerReplies) PeerDown(uint32, error) {}

// answerer answers every GET with a GET_REPLY and keeps nothing.
type answerer struct{ t *Transport }

func (a *answerer) HandleMessage(from uint32, h wire.Header, m wire.Message) {
	if _, ok := m.(*wire.Get); ok {
		a.t.Send(from, wire.Header{RequestID: h.RequestID}, &wire.GetReply{})
	}
}

func (a *answerer) PeerDown(uint32, error) {}

// drivePair starts node 1, whose answers go to the returned Answers, and
// node 2 answering GETs, both busy-polling, and connects them.
func drivePair(t testing.TB, frame string) (*Transport, *transporttest.Answers, transporttest.DriveFuncs) {
	t.Helper()
	ans := transporttest.NewAnswers(frame)
	a, err := New(Config{Self: 1, Listen: "127.0.0.1:0", Handler: answerReplies{ans}, BusyPoll: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	srv := &answerer{}
	b, err := New(Config{Self: 2, Listen: "127.0.0.1:0", Handler: srv, BusyPoll: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.t = b
	t.Cleanup(func() { b.Close() })
	a.SetPeerAddr(2, b.Addr().String())
	if err := a.Connect(2); err != nil {
		t.Fatal(err)
	}
	get := &wire.Get{Region: "r"}
	f := transporttest.DriveFuncs{
		Send:  func(id uint64) error { return a.Send(2, wire.Header{RequestID: id}, get) },
		Drive: func(done <-chan struct{}) bool { return a.Drive(2, transporttest.Closed(done)) },
	}
	return a, ans, f
}

const driveFrame = "tcp.(*Transport).Drive"

// A caller that drives reads its answer from the socket on its own
// goroutine; once it stops, the read loop takes over again and misses
// nothing.
func TestDrive(t *testing.T) {
	_, ans, f := drivePair(t, driveFrame)
	ans.CheckDrive(t, f, 500)
}

// Callers driving at once share the connections: each reply is delivered
// once, and every caller gets its own.
func TestDriveConcurrent(t *testing.T) {
	_, ans, f := drivePair(t, driveFrame)
	ans.CheckDriveConcurrent(t, f, 4, 200)
}

// Without BusyPoll a node has asked not to spin: Drive declines at once.
// With it, Drive gives up on an answer that does not come, and on a
// closed transport returns at once.
func TestDriveDeclinesAndGivesUp(t *testing.T) {
	quiet, _ := start(t, 3, nil)
	never := make(chan struct{})
	if quiet.Drive(2, transporttest.Closed(never)) {
		t.Fatal("Drive without BusyPoll reported an answer")
	}
	a, _, _ := drivePair(t, driveFrame)
	if a.Drive(2, transporttest.Closed(never)) {
		t.Fatal("Drive reported an answer that never came")
	}
	a.Close()
	if a.Drive(2, transporttest.Closed(never)) {
		t.Fatal("Drive on a closed transport reported an answer")
	}
}

// A connection that loses its framing while a caller drives is answered
// with a typed ERROR and dropped, wherever it was read; the caller's own
// round trips go on.
func TestDriveBadFrame(t *testing.T) {
	a, ans, f := drivePair(t, driveFrame)
	raw, hello := rawPeer(t, a, 9)
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
			ans.RoundTrip(t, f, id)
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
	_, ans, f := drivePair(b, "")
	id := uint64(0)
	var rtts []time.Duration
	defer func() {
		slices.Sort(rtts)
		b.ReportMetric(float64(rtts[len(rtts)/2].Nanoseconds()), "p50-ns")
	}()
	for b.Loop() {
		t0 := time.Now()
		id++
		done := ans.Expect(id)
		if err := f.Send(id); err != nil {
			b.Fatal(err)
		}
		if !f.Drive(done) {
			<-done
		}
		rtts = append(rtts, time.Since(t0))
	}
}

// A driver must not block on a connection whose read loop has parked: the
// parked loop holds the socket's read lock until data comes, which on a
// quiet connection is the next heartbeat (200 ms). Every round trip here
// starts after every loop has parked; they used to take 270 ms each.
func TestDriveWithParkedLoops(t *testing.T) {
	a, ans, f := drivePair(t, "")
	quiet, _ := start(t, 3, func(cfg *Config) { cfg.BusyPoll = true })
	quiet.SetPeerAddr(1, a.Addr().String())
	if err := quiet.Connect(1); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		time.Sleep(30 * time.Millisecond) // past maxSpins looks: every loop parks
		t0 := time.Now()
		ans.RoundTrip(t, f, uint64(i+1))
		if d := time.Since(t0); d > 100*time.Millisecond {
			t.Fatalf("round trip %d took %v: the driver waited on a parked connection", i+1, d)
		}
	}
}

// Pokes (park.go) are read deadlines in the past, set from other
// goroutines at any moment: readers of a busy connection must take them as
// "look again", whether the loop is parked, reading or stepped aside for a
// driver. Here pokes rain on a connection while round trips run over it,
// driven and not; every answer arrives and the connection stays up.
func TestPokesDoNotBreakReads(t *testing.T) {
	a, ans, f := drivePair(t, "")
	var c *conn
	if cs := a.live.Load(); cs != nil && len(*cs) == 1 {
		c = (*cs)[0]
	} else {
		t.Fatal("want one connection")
	}
	stop := make(chan struct{})
	poked := make(chan struct{})
	go func() {
		defer close(poked)
		for {
			select {
			case <-stop:
				return
			default:
			}
			c.nc.SetReadDeadline(pokedAt)
			a.pokeParked()
			time.Sleep(50 * time.Microsecond)
		}
	}()
	for i := range 300 {
		if i%50 == 0 {
			time.Sleep(10 * time.Millisecond) // let the loop park now and then
		}
		if i%2 == 0 {
			ans.RoundTrip(t, f, uint64(i+1))
			continue
		}
		done := ans.Expect(uint64(i + 1))
		if err := f.Send(uint64(i + 1)); err != nil {
			t.Fatal(err)
		}
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("answer %d never arrived", i+1)
		}
	}
	close(stop)
	<-poked
	if c.isClosed() {
		t.Fatal("pokes closed the connection")
	}
}
