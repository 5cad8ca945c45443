package bcship

import (
	"bufio"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/bcship/bcship/wire"
)

// rawPeer is a hand-driven connection to a node, for sending it bad frames.
type rawPeer struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, n *Node, id uint32) *rawPeer {
	t.Helper()
	nc, err := net.Dial("tcp", n.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	p := &rawPeer{t: t, nc: nc, br: bufio.NewReader(nc)}
	p.send(wire.Header{}, &wire.Hello{Node: id})
	if f := p.next(); f.Type != wire.TypeHello {
		t.Fatalf("node answered HELLO with %v", f.Type)
	}
	return p
}

func (p *rawPeer) send(h wire.Header, m wire.Message) {
	p.t.Helper()
	b, err := wire.AppendFrame(nil, h, m)
	if err != nil {
		p.t.Fatal(err)
	}
	p.write(b)
}

func (p *rawPeer) write(b []byte) {
	p.t.Helper()
	if _, err := p.nc.Write(b); err != nil {
		p.t.Fatal(err)
	}
}

// next reads the next frame that is not a heartbeat.
func (p *rawPeer) next() wire.Frame {
	p.t.Helper()
	p.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		f, err := wire.ReadFrame(p.br, 0, nil)
		if err != nil {
			p.t.Fatalf("reading a frame: %v", err)
		}
		return f
	}
}

// wantError reads the next frame and checks it is ERROR code for req.
func (p *rawPeer) wantError(req uint64, code wire.ErrorCode) {
	p.t.Helper()
	for {
		f := p.next()
		if f.Type == wire.TypeHello {
			continue
		}
		m, err := wire.Decode(f.Type, f.Payload)
		if err != nil {
			p.t.Fatal(err)
		}
		e, ok := m.(*wire.ErrorMsg)
		if !ok {
			p.t.Fatalf("got %v, want ERROR %v", f.Type, code)
		}
		if e.Code != code || e.OriginRequest != req || f.RequestID != req {
			p.t.Fatalf("got ERROR %v for request %d (%s), want %v for %d", e.Code, e.OriginRequest, e.Text, code, req)
		}
		p.t.Logf("request %d: ERROR %v: %s", req, e.Code, e.Text)
		return
	}
}

// wantPing sends an empty GET and waits for its GET_REPLY.
func (p *rawPeer) wantPing(req uint64) {
	p.t.Helper()
	p.send(wire.Header{RequestID: req}, &wire.Get{})
	for {
		f := p.next()
		if f.Type == wire.TypeHello {
			continue
		}
		if f.Type != wire.TypeGetReply || f.RequestID != req {
			p.t.Fatalf("ping %d answered with %v for %d", req, f.Type, f.RequestID)
		}
		return
	}
}

func TestBadFrames(t *testing.T) {
	nodes := cluster(t, []uint32{1}, func(c *Config) { c.MaxFrame = 1 << 20 })
	n := nodes[1]
	p := dialRaw(t, n, 50)

	// Unknown message type: answered, connection kept.
	b := wire.Header{Type: 99, RequestID: 7, Length: 3}.AppendTo(nil)
	p.write(append(b, 1, 2, 3))
	p.wantError(7, wire.CodeUnknownType)
	p.wantPing(8)

	// A payload that does not decode.
	b = wire.Header{Type: wire.TypeInvoke, RequestID: 9, Length: 5}.AppendTo(nil)
	p.write(append(b, 1, 2, 3, 4, 5))
	p.wantError(9, wire.CodeBadFrame)
	p.wantPing(10)

	// A frame over the node's limit: refused from its header, skipped.
	big := 2 << 20
	b = wire.Header{Type: wire.TypeShip, RequestID: 11, Length: uint32(big)}.AppendTo(nil)
	p.write(append(b, make([]byte, big)...))
	p.wantError(11, wire.CodeTooLarge)
	p.wantPing(12)

	// SHIP of garbage, then INVOKE of its hash: typed error, not a hang.
	p.send(wire.Header{RequestID: 13}, &wire.Ship{Hash: [32]byte{1}, Bundle: []byte("not a bundle")})
	p.send(wire.Header{RequestID: 14}, &wire.Invoke{Hash: [32]byte{1}, Origin: 50, OriginRequest: 14, TTL: 3, Entry: "x"})
	p.wantError(14, wire.CodeBadFrame)
	p.wantPing(15)

	// Bad magic: the stream has lost its framing; answered, then closed.
	p.write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	p.wantError(0, wire.CodeBadFrame)
	p.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, err := wire.ReadFrame(p.br, 0, nil); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatalf("connection not closed after bad magic")
				}
			}
			break
		}
	}
	// The node keeps serving new connections.
	dialRaw(t, n, 51).wantPing(1)

	// A first frame that is not HELLO is answered and the connection closed.
	nc, err := net.Dial("tcp", n.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	b, _ = wire.AppendFrame(nil, wire.Header{RequestID: 3}, &wire.Get{})
	nc.Write(b)
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	f, err := wire.ReadFrame(bufio.NewReader(nc), 0, nil)
	if err != nil || f.Type != wire.TypeError {
		t.Fatalf("non-HELLO first frame: %v %v", f.Type, err)
	}
	dialRaw(t, n, 52).wantPing(1)
}
