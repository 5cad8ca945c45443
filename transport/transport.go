package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/bcship/bcship/wire"
)

var (
	// ErrPeerDown reports a peer that cannot be reached: it refused the
	// connection, the connection broke, or it stopped answering heartbeats.
	ErrPeerDown = errors.New("transport: peer down")
	// ErrClosed reports a Transport used after Close.
	ErrClosed = errors.New("transport: closed")
	// ErrUnknownPeer reports a node id with no known address.
	ErrUnknownPeer = errors.New("transport: unknown peer")
	// ErrHandshake reports a connection whose HELLO exchange failed (wrong
	// node id, not a bcship peer, protocol mismatch).
	ErrHandshake = errors.New("transport: handshake failed")
)

// PeerDownError says which peer is down and why. It matches ErrPeerDown
// and unwraps to the cause (a net error, ErrHandshake, io.EOF, …).
type PeerDownError struct {
	Peer uint32
	Err  error
}

func (e *PeerDownError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("transport: peer %d down", e.Peer)
	}
	return fmt.Sprintf("transport: peer %d down: %v", e.Peer, e.Err)
}

// Is reports whether target is ErrPeerDown.
func (e *PeerDownError) Is(target error) bool { return target == ErrPeerDown }

// Unwrap returns the cause.
func (e *PeerDownError) Unwrap() error { return e.Err }

// Handler receives what a Transport delivers. Its methods are called from
// the transport's connection goroutines; they must not block for long, since
// the next frame of that connection waits for them.
type Handler interface {
	// HandleMessage delivers one decoded message (never HELLO: the
	// transport consumes those). m, and the memory its byte fields alias,
	// are the transport's and valid only until HandleMessage returns: a
	// transport may decode the next frame into them (transport/tcp does,
	// so that a frame costs no allocation). A handler copies what it keeps
	// (wire.Clone, or bytes.Clone of a field).
	HandleMessage(from uint32, h wire.Header, m wire.Message)
	// PeerDown reports that the connection to peer died. Requests in
	// flight to it will get no answer.
	PeerDown(peer uint32, err error)
}

// Transport moves wire messages between nodes.
type Transport interface {
	// Send encodes m in a frame to peer and queues it; it connects first
	// when there is no connection. A nil error means queued, not
	// delivered. Unreachable peers give an error matching ErrPeerDown.
	Send(peer uint32, h wire.Header, m wire.Message) error
	// Connect makes sure a connection to peer is up, dialing if needed.
	Connect(peer uint32) error
	// Peers describes every peer with a connection or a known address.
	Peers() []PeerInfo
	// Stats returns traffic counters.
	Stats() Stats
	// Close shuts every connection and the listener down.
	Close() error
}

// Endpoint is a Transport that listens and keeps a peer address book: what
// a node needs from the concrete transport it starts (transport/tcp and
// transport/rdma are both one).
type Endpoint interface {
	Transport
	// Addr is the listener's address, or nil for a transport that only
	// dials.
	Addr() net.Addr
	// SetPeerAddr records (or changes) the address of peer id.
	SetPeerAddr(id uint32, addr string)
}

// OneSided is implemented by transports that reach a peer's registered
// memory without running anything on the peer's CPU (RDMA READ and WRITE).
// It is optional: a node asks for it with a type assertion and falls back
// to GET/PUT messages when it is missing or an access cannot be one-sided
// (no RDMA to that peer, a region the peer has not advertised to us yet).
type OneSided interface {
	// RegisterRegion exposes data as name to peers' Read and Write; nil
	// data withdraws it. data is used in place.
	RegisterRegion(name string, data []byte) error
	// Read fills dst from offset off of peer's region.
	Read(ctx context.Context, peer uint32, region string, off uint64, dst []byte) error
	// Write copies src to offset off of peer's region.
	Write(ctx context.Context, peer uint32, region string, off uint64, src []byte) error
}

// Driver is implemented by transports whose receive path a caller may run
// on its own goroutine while it waits for an answer. On a round trip of a
// few microseconds, handing the answer from the transport's goroutine to
// the waiting one (wake it, find it a processor) costs as much as the
// rest; a caller that polls for its answer itself saves that.
type Driver interface {
	// Drive polls for incoming frames and delivers them, to the Handler
	// as usual but on the calling goroutine, until done.Answered()
	// reports true; then it reports true. peer is the node the request
	// went to (the answer is expected from it, or from further along a
	// chain); a transport may decline at once when polling would not see
	// that peer's answer.
	// It gives up and reports false after a short while (tens of
	// microseconds) or when the transport closes, so that a caller
	// waiting for a long chain does not hold a processor: the caller then
	// waits as it would have without Drive.
	Drive(peer uint32, done Answered) bool
}

// Answered is what a driving caller waits for: whether its answer has
// been delivered. A flag the caller's request sets, not a channel: a
// channel per request costs an allocation, and its close more than the
// store of a flag, on a round trip of a few microseconds.
type Answered interface {
	Answered() bool
}

// Drainer is implemented by transports that can stop taking connections
// while the ones they have keep working: a node that drains before it
// shuts down finishes its chains but takes no new peers.
type Drainer interface {
	// StopAccepting closes the listener; it is safe to call more than
	// once, and Close still tears everything down.
	StopAccepting()
}

// PeerInfo describes a peer as the transport knows it.
type PeerInfo struct {
	ID        uint32
	Addr      string     // address dialed or announced in HELLO
	Connected bool       // a connection is up
	Hello     wire.Hello // the peer's last HELLO (zero before the first)
	Since     time.Time  // when the current connection came up
}

// Stats counts a transport's traffic, HELLO and heartbeats included.
type Stats struct {
	BytesSent, BytesRecv   uint64
	FramesSent, FramesRecv uint64
	Dials, DialFailures    uint64
	BadFrames              uint64 // frames answered with ERROR because they did not decode
}
