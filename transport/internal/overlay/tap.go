package overlay

import (
	"github.com/bcship/bcship/transport"
	"github.com/bcship/bcship/transport/tcp"
	"github.com/bcship/bcship/wire"
)

// Tap is the Handler an overlay gives the TCP transport underneath: it
// takes the setup messages (AM frames to Name) off the stream and passes
// everything else to Node.
type Tap struct {
	Name string            // the reserved AM handler of the setup messages
	Node transport.Handler // the node's handler
	// Ctrl gets the argument of each setup message.
	Ctrl func(from uint32, arg []byte)
	// LinkDown runs before Node hears PeerDown: the TCP link carried the
	// peer's liveness, so its fast connection goes too, and the node
	// hears once.
	LinkDown func(peer uint32, err error)
}

// HandleMessage implements transport.Handler.
func (t *Tap) HandleMessage(from uint32, h wire.Header, m wire.Message) {
	if am, ok := m.(*wire.AM); ok && am.Handler == t.Name {
		t.Ctrl(from, am.Arg)
		return
	}
	t.Node.HandleMessage(from, h, m)
}

// PeerDown implements transport.Handler.
func (t *Tap) PeerDown(peer uint32, err error) {
	t.LinkDown(peer, err)
	t.Node.PeerDown(peer, err)
}

// SendCtrl sends a setup message to peer over tt as an AM frame to name.
func SendCtrl(tt *tcp.Transport, self uint32, name string, peer uint32, arg []byte) error {
	return tt.Send(peer, wire.Header{}, &wire.AM{Handler: name, Origin: self, Arg: arg})
}

// Hello returns the HELLO of peer's live TCP connection.
func Hello(tt *tcp.Transport, peer uint32) (wire.Hello, bool) {
	for _, p := range tt.Peers() {
		if p.ID == peer && p.Connected {
			return p.Hello, true
		}
	}
	return wire.Hello{}, false
}
