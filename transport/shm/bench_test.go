package shm

import (
	"testing"

	"github.com/bcship/bcship/transport"
	"github.com/bcship/bcship/transport/tcp"
	"github.com/bcship/bcship/wire"
)

// echo answers every message with the same message.
type echo struct{ t transport.Transport }

func (e *echo) HandleMessage(from uint32, h wire.Header, m wire.Message) { e.t.Send(from, h, m) }
func (e *echo) PeerDown(uint32, error)                                   {}

// waiter signals every message on a channel.
type waiter chan struct{}

func (w waiter) HandleMessage(uint32, wire.Header, wire.Message) { w <- struct{}{} }
func (w waiter) PeerDown(uint32, error)                          {}

// BenchmarkPingPong is the transport's round trip: a 64-byte AM to a peer
// that sends it back, over shared memory and, for comparison, over TCP.
func BenchmarkPingPong(b *testing.B) {
	for _, kind := range []string{"shm", "tcp"} {
		b.Run(kind, func(b *testing.B) {
			dir := b.TempDir()
			mk := func(id uint32, h transport.Handler) transport.Endpoint {
				tc := tcp.Config{Self: id, Listen: "127.0.0.1:0", Handler: h}
				var tr transport.Endpoint
				var err error
				if kind == "shm" {
					tr, err = New(Config{TCP: tc, Dir: dir})
				} else {
					tr, err = tcp.New(tc)
				}
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { tr.Close() })
				return tr
			}
			w := make(waiter, 1)
			e := &echo{}
			a := mk(1, w)
			e.t = mk(2, e)
			a.SetPeerAddr(2, e.t.(transport.Endpoint).Addr().String())
			m := &wire.AM{Handler: "echo", Arg: make([]byte, 64)}
			for b.Loop() {
				if err := a.Send(2, wire.Header{}, m); err != nil {
					b.Fatal(err)
				}
				<-w
			}
		})
	}
}
