package bcship

import (
	"net"
	"testing"

	"github.com/bcship/bcship/transport"
	"github.com/bcship/bcship/wire"
)

// direct is a transport that hands every frame, encoded and decoded as on
// a wire, straight to the peer node's handler on the sender's goroutine:
// no sockets, no scheduling. A round trip over it is the nodes' own CPU
// cost.
type direct struct {
	self  uint32
	nodes map[uint32]*Node
	buf   []byte
	dec   wire.Decoder
}

func (d *direct) Send(peer uint32, h wire.Header, m wire.Message) error {
	h.Source = d.self
	f, err := wire.AppendFrame(d.buf[:0], h, m)
	if err != nil {
		return err
	}
	d.buf = f
	hd, err := wire.ParseHeader(f)
	if err != nil {
		return err
	}
	// As over TCP: decoded in place, into messages the transport keeps.
	msg, err := d.dec.Decode(hd.Type, f[wire.HeaderSize:])
	if err != nil {
		return err
	}
	d.nodes[peer].handle(d.self, hd, msg)
	return nil
}

func (d *direct) Connect(uint32) error               { return nil }
func (d *direct) Peers() []transport.PeerInfo        { return nil }
func (d *direct) Stats() transport.Stats             { return transport.Stats{} }
func (d *direct) Close() error                       { return nil }
func (d *direct) Addr() net.Addr                     { return nil }
func (d *direct) SetPeerAddr(id uint32, addr string) {}

// BenchmarkNodePath is a cached invoke round trip between two nodes joined
// by the direct transport: what the nodes themselves add to a round trip
// over any real transport (encode and decode, dispatch, the kernel run, the
// result), without the transport's own cost.
func BenchmarkNodePath(b *testing.B) {
	nodes := map[uint32]*Node{}
	for _, id := range []uint32{1, 2} {
		n := idleNode(b, id)
		if err := n.setTransport(&direct{self: id, nodes: nodes}); err != nil {
			b.Fatal(err)
		}
		nodes[id] = n
	}
	benchRoundTrips(b, nodes)
}
