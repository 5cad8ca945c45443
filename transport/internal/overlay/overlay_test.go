package overlay

import (
	"errors"
	"testing"

	"github.com/bcship/bcship/transport"
	"github.com/bcship/bcship/transport/internal/transporttest"
	"github.com/bcship/bcship/wire"
)

type fakeConn struct{ id int }

type msg struct{ kind byte }

func TestPeersSetup(t *testing.T) {
	p := Peers[*fakeConn, msg]{}
	ps := p.Get(7)
	if p.Get(7) != ps {
		t.Fatal("Get made a second Peer")
	}
	ps.Begin()
	dialing := ps.Dialing
	p.Answer(7, ps.Nonce+1, msg{1}) // another attempt's: dropped
	p.Answer(8, ps.Nonce, msg{1})   // another peer: dropped
	p.Answer(7, ps.Nonce, msg{2})
	p.Answer(7, ps.Nonce, msg{3}) // Reply is full: dropped, no block
	if m := <-ps.Reply; m.kind != 2 {
		t.Fatalf("answer %d, want 2", m.kind)
	}
	err := errors.New("x")
	ps.End(err)
	select {
	case <-dialing:
	default:
		t.Fatal("End left Dialing open")
	}
	if ps.Dialing != nil || ps.Reply != nil || ps.SetupErr != err {
		t.Fatalf("after End: %+v", ps)
	}
	ps.Answer(msg{4}) // no attempt: no effect, no block
}

func TestPeersConns(t *testing.T) {
	p := Peers[*fakeConn, msg]{}
	c1, c2 := &fakeConn{1}, &fakeConn{2}
	p.Get(1).Conn = c1
	p.Get(2).Conn = c2
	p.Get(3)
	if n := len(p.Conns()); n != 2 {
		t.Fatalf("%d conns, want 2", n)
	}
	if p.Detach(1, c2) || !p.Detach(1, c1) || p.Detach(1, c1) || p.Detach(9, c1) {
		t.Fatal("Detach detached the wrong connection")
	}
	ps := p.Get(2)
	ps.TCPOnly = true
	if c := ps.LinkDown(); c != c2 || ps.Conn != nil || ps.TCPOnly || !ps.RetryAt.IsZero() {
		t.Fatalf("LinkDown: %v, %+v", c, ps)
	}
	ps.Conn = c2
	if cs := p.TakeConns(); len(cs) != 1 || cs[0] != c2 || len(p.Conns()) != 0 {
		t.Fatalf("TakeConns: %v, left %v", cs, p.Conns())
	}
}

func TestFatal(t *testing.T) {
	for _, tc := range []struct {
		err   error
		fatal bool
	}{
		{&transport.PeerDownError{Peer: 1}, true},
		{transport.ErrUnknownPeer, true},
		{transport.ErrClosed, true},
		{errors.New("setup refused"), false},
	} {
		if got := Fatal(tc.err); got != tc.fatal {
			t.Errorf("Fatal(%v) = %v", tc.err, got)
		}
	}
	if !LowerWins(1, 2) || LowerWins(2, 1) {
		t.Error("LowerWins: the lower id must win")
	}
}

func TestTap(t *testing.T) {
	node := transporttest.NewRecorder()
	var ctrl [][]byte
	var downs []uint32
	tap := &Tap{Name: "\x00ctl", Node: node,
		Ctrl: func(from uint32, arg []byte) { ctrl = append(ctrl, arg) },
		LinkDown: func(peer uint32, err error) {
			downs = append(downs, peer)
			node.Mu.Lock()
			defer node.Mu.Unlock()
			if len(node.Downs) != 0 {
				t.Error("the node heard PeerDown before LinkDown ran")
			}
		},
	}
	tap.HandleMessage(2, wire.Header{}, &wire.AM{Handler: "\x00ctl", Arg: []byte("x")})
	tap.HandleMessage(2, wire.Header{}, &wire.AM{Handler: "app"})
	if len(ctrl) != 1 || string(ctrl[0]) != "x" || node.Count() != 1 {
		t.Fatalf("control %q, node got %d", ctrl, node.Count())
	}
	tap.PeerDown(2, transport.ErrPeerDown)
	if len(downs) != 1 || len(node.Downs) != 1 {
		t.Fatalf("LinkDown %v, node %v", downs, node.Downs)
	}
}

func TestDeliver(t *testing.T) {
	frame := func(h wire.Header, m wire.Message) (wire.Header, []byte) {
		t.Helper()
		f, err := wire.AppendFrame(nil, h, m)
		if err != nil {
			t.Fatal(err)
		}
		h, err = wire.ParseHeader(f)
		if err != nil {
			t.Fatal(err)
		}
		return h, f
	}
	type answer struct {
		req  uint64
		code wire.ErrorCode
	}
	var answers []answer
	ans := func(req uint64, code wire.ErrorCode, text string) { answers = append(answers, answer{req, code}) }
	node := transporttest.NewRecorder()
	var dec wire.Decoder

	h, f := frame(wire.Header{RequestID: 1}, &wire.AM{Handler: "app", Arg: []byte("a")})
	Deliver(node, &dec, 3, h, f, ans)
	h, f = frame(wire.Header{RequestID: 2}, &wire.Hello{})
	Deliver(node, &dec, 3, h, f, ans) // dropped
	h, f = frame(wire.Header{RequestID: 3}, &wire.AM{Handler: "app"})
	f = f[:len(f)-1] // a payload that does not decode
	h.Length--
	Deliver(node, &dec, 3, h, f, ans)
	h.Type = 0xff
	Deliver(node, &dec, 3, h, f, ans)
	h.Type = wire.TypeError
	Deliver(node, &dec, 3, h, f, ans) // never answered
	if node.Count() != 1 || string(node.Msgs[0].Arg) != "a" {
		t.Fatalf("node got %d messages", node.Count())
	}
	want := []answer{{3, wire.CodeBadFrame}, {3, wire.CodeUnknownType}}
	if len(answers) != len(want) || answers[0] != want[0] || answers[1] != want[1] {
		t.Fatalf("answers %v, want %v", answers, want)
	}
}

func TestCounters(t *testing.T) {
	var c Counters
	c.Sent(2, 100)
	c.Received(30)
	c.Bad()
	s := c.Add(transport.Stats{BytesSent: 1, FramesRecv: 1, Dials: 5})
	want := transport.Stats{BytesSent: 101, BytesRecv: 30, FramesSent: 2, FramesRecv: 2, Dials: 5, BadFrames: 1}
	if s != want {
		t.Fatalf("%+v, want %+v", s, want)
	}
}
