package bcship

import (
	"bytes"
	"fmt"
	"time"

	"github.com/bcship/bcship/wire"
)

// handler is the Node as the transport's Handler; the methods are kept off
// Node's public API.
type handler Node

func (h *handler) HandleMessage(from uint32, hd wire.Header, m wire.Message) {
	(*Node)(h).handle(from, hd, m)
}

func (h *handler) PeerDown(peer uint32, err error) { (*Node)(h).peerDown(peer, err) }

// handle dispatches one message. It runs on the connection's read loop:
// kernels run on their own goroutines, and SHIP is installed right here, so
// that an INVOKE pipelined behind it finds the code.
func (n *Node) handle(from uint32, hd wire.Header, m wire.Message) {
	switch m := m.(type) {
	case *wire.Invoke:
		j := jobFromInvoke(from, m)
		n.dispatch(&j, m.Deadline)
	case *wire.Forward:
		j := jobFromInvoke(from, (*wire.Invoke)(m))
		n.dispatch(&j, m.Deadline)
	case *wire.AM:
		j := job{am: m.Handler, arg: m.Arg, origin: m.Origin, req: m.OriginRequest, ttl: m.TTL, from: from}
		n.dispatch(&j, 0)
	case *wire.Ship:
		n.handleShip(from, hd, m)
	case *wire.NeedCode:
		nc := *m // m is the transport's (transport.Handler)
		n.goRun(func() { n.handleNeedCode(from, hd, &nc) })
	case *wire.Result:
		n.onResult(from, hd, m)
	case *wire.ErrorMsg:
		if c := n.take(m.OriginRequest); c != nil {
			c.complete(nil, nil, &RemoteError{Node: from, Code: m.Code, Text: m.Text})
		} else {
			n.log.Debug("ERROR for no pending request", "from", from, "req", m.OriginRequest, "code", m.Code, "text", m.Text)
		}
	case *wire.GetReply:
		n.finish(hd.RequestID, nil, bytes.Clone(m.Data), nil)
	case *wire.PutReply:
		var err error
		if m.Status != wire.CodeOK {
			err = &RemoteError{Node: from, Code: m.Status, Text: "PUT refused"}
		}
		n.finish(hd.RequestID, nil, nil, err)
	case *wire.Get:
		n.serveGet(from, hd, m)
	case *wire.Put:
		n.servePut(from, hd, m)
	case *wire.Hello:
	default:
		n.reply(from, hd, wire.NewError(wire.CodeUnknownType, hd.RequestID, fmt.Sprintf("node %d does not handle %v", n.cfg.ID, m.Type())))
	}
}

// reply answers the frame hd from from, logging a failure.
func (n *Node) reply(from uint32, hd wire.Header, m wire.Message) {
	if err := n.send(from, wire.Header{RequestID: hd.RequestID}, m); err != nil {
		n.log.Debug("reply undeliverable", "peer", from, "type", m.Type(), "err", err)
	}
}

func (n *Node) onResult(from uint32, hd wire.Header, m *wire.Result) {
	n.pmu.Lock()
	c := n.pending.get(m.OriginRequest)
	if c == nil {
		n.pmu.Unlock()
		n.log.Debug("RESULT for no pending request", "from", from, "req", m.OriginRequest)
		return
	}
	if len(m.Reply) > 0 || hd.Flags&FlagMore != 0 {
		c.replies = append(c.replies, c.keep(m.Reply)) // m is the transport's
	}
	if hd.Flags&FlagMore != 0 {
		n.pmu.Unlock()
		return
	}
	n.pending.remove(m.OriginRequest)
	n.pmu.Unlock()
	c.result = Result{Node: from, Status: m.Status, Replies: c.replies, Hops: int(m.Hops), Elapsed: time.Since(c.start)}
	c.complete(&c.result, nil, nil)
}

func (n *Node) serveGet(from uint32, hd wire.Header, m *wire.Get) {
	if m.Region == "" && m.Length == 0 {
		n.reply(from, hd, &wire.GetReply{}) // ping
		return
	}
	d, code, text := n.regions.Load().slice(m.Region, m.Offset, uint64(m.Length))
	if code != wire.CodeOK {
		n.reply(from, hd, wire.NewError(code, hd.RequestID, text))
		return
	}
	n.reply(from, hd, &wire.GetReply{Data: d})
}

func (n *Node) servePut(from uint32, hd wire.Header, m *wire.Put) {
	d, code, text := n.regions.Load().slice(m.Region, m.Offset, uint64(len(m.Data)))
	if code == wire.CodeOK {
		copy(d, m.Data)
	} else {
		n.log.Debug("PUT refused", "peer", from, "err", text)
	}
	n.reply(from, hd, &wire.PutReply{Status: code})
}

// peerDown fails the requests the dead peer may have held: those sent to
// it, and every chain, since a chain may have moved anywhere.
func (n *Node) peerDown(peer uint32, err error) {
	n.smu.Lock()
	n.setKnown(peer, nil) // it may come back with an empty cache
	n.smu.Unlock()
	n.failAll(func(c *call) bool { return c.peer == peer || c.anyPeer }, err)
}
