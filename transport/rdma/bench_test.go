package rdma

import (
	"context"
	"testing"

	"github.com/bcship/bcship/transport"
	"github.com/bcship/bcship/transport/tcp"
	"github.com/bcship/bcship/wire"
)

// BenchmarkRead is the round trip of a 16-byte one-sided READ through
// the Transport (post, completion, the waiting caller woken), the unit of
// a GET-driven pointer chase. Compare with verbs' BenchmarkLatency/read,
// the bare verbs round trip.
func BenchmarkRead(b *testing.B) {
	a, t := newNode(b, 1, Config{}), newNode(b, 2, Config{})
	if err := t.t.RegisterRegion("data", make([]byte, 4096)); err != nil {
		b.Fatal(err)
	}
	a.t.SetPeerAddr(2, t.t.Addr().String())
	if err := a.t.Connect(2); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	dst := make([]byte, 16)
	b.ResetTimer()
	for i := range b.N {
		if err := a.t.Read(ctx, 2, "data", uint64(16*(i%256)), dst); err != nil {
			b.Fatal(err)
		}
	}
}

// pong answers every AM with the same AM.
type pong struct{ t *Transport }

func (p *pong) HandleMessage(from uint32, h wire.Header, m wire.Message) {
	p.t.Send(from, h, m)
}
func (p *pong) PeerDown(uint32, error) {}

// BenchmarkPingPong is the round trip of a 64-byte AM frame over SEND/RECV
// with the far side answering from its poller, the unit of a shipped hop;
// with the frame sent inline and from a registered send buffer.
func BenchmarkPingPong(b *testing.B) {
	for _, v := range []struct {
		name   string
		inline int
	}{{"inline", 0}, {"buffer", -1}} {
		b.Run(v.name, func(b *testing.B) { pingPong(b, Config{MaxInline: v.inline}) })
	}
}

func pingPong(b *testing.B, cfg Config) {
	a := newNode(b, 1, cfg)
	rec := a.rec
	p := &pong{}
	cfg.Device = rxeDevice(b)
	tb := newNodeHandler(b, 2, cfg, p)
	p.t = tb
	a.t.SetPeerAddr(2, tb.Addr().String())
	tb.SetPeerAddr(1, a.t.Addr().String())
	if err := a.t.Connect(2); err != nil {
		b.Fatal(err)
	}
	waitConn(b, a.t, 2)
	waitConn(b, tb, 1)
	am := &wire.AM{Handler: "ping", Origin: 1, Arg: make([]byte, 64)}
	b.ResetTimer()
	for i := range b.N {
		if err := a.t.Send(2, wire.Header{RequestID: uint64(i)}, am); err != nil {
			b.Fatal(err)
		}
		rec.Wait(b, 5e9, "the answer", func() bool { return len(rec.Msgs) > i })
	}
}

func newNodeHandler(t testing.TB, id uint32, cfg Config, h transport.Handler) *Transport {
	t.Helper()
	cfg.TCP = tcp.Config{Self: id, Listen: "127.0.0.1:0", Handler: h}
	tr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}
