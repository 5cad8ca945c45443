package overlay

import (
	"errors"
	"sync/atomic"

	"github.com/bcship/bcship/transport"
	"github.com/bcship/bcship/wire"
)

// Deliver decodes frame f (its header h, already checked against f and
// the size limit) into dec's messages and hands the message to node as
// from peer (transport.Handler: f and the message are the transport's
// again once node returns). HELLO is dropped: heartbeats stay on TCP. A
// frame that does not decode is answered with an ERROR through answer,
// unless it is an ERROR itself (never answer an ERROR with one).
func Deliver(node transport.Handler, dec *wire.Decoder, peer uint32, h wire.Header, f []byte, answer func(req uint64, code wire.ErrorCode, text string)) {
	if h.Type == wire.TypeHello {
		return
	}
	m, err := dec.Decode(h.Type, f[wire.HeaderSize:])
	if err != nil {
		if h.Type != wire.TypeError {
			code := wire.CodeBadFrame
			if errors.Is(err, wire.ErrUnknownType) {
				code = wire.CodeUnknownType
			}
			answer(h.RequestID, code, err.Error())
		}
		return
	}
	node.HandleMessage(peer, h, m)
}

// Counters count the fast path's traffic, to add to the TCP transport's.
type Counters struct {
	bytesSent, bytesRecv   atomic.Uint64
	framesSent, framesRecv atomic.Uint64
	badFrames              atomic.Uint64
}

// Sent counts frames of bytes in all sent.
func (c *Counters) Sent(frames, bytes int) {
	c.framesSent.Add(uint64(frames))
	c.bytesSent.Add(uint64(bytes))
}

// Received counts one frame of bytes received.
func (c *Counters) Received(bytes int) {
	c.bytesRecv.Add(uint64(bytes))
	c.framesRecv.Add(1)
}

// Bad counts a frame answered with ERROR.
func (c *Counters) Bad() { c.badFrames.Add(1) }

// Add returns s with the counts added.
func (c *Counters) Add(s transport.Stats) transport.Stats {
	s.BytesSent += c.bytesSent.Load()
	s.BytesRecv += c.bytesRecv.Load()
	s.FramesSent += c.framesSent.Load()
	s.FramesRecv += c.framesRecv.Load()
	s.BadFrames += c.badFrames.Load()
	return s
}
