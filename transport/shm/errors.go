package shm

import "errors"

var (
	// ErrBadSegment reports a segment file that cannot be used: not a
	// segment, a bad header, or not the file the peer named. The peer pair
	// then keeps using TCP.
	ErrBadSegment = errors.New("shm: bad segment")
	// ErrCorrupt reports a ring whose shared state the peer broke: a
	// position out of range, a stream that lost its framing, a segment
	// that shrank under us. The connection is dropped.
	ErrCorrupt = errors.New("shm: ring corrupted by the peer")
	// ErrQueueFull reports a Send refused because the frames waiting for
	// ring space exceed Config.MaxQueued bytes.
	ErrQueueFull = errors.New("shm: send queue full")
	// ErrSetup reports a shared-memory setup that failed (refused, timed
	// out, malformed control message). The peer pair keeps using TCP.
	ErrSetup = errors.New("shm: setup failed")
)
