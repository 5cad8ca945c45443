package rdma

import (
	"errors"
	"fmt"
)

var (
	// ErrNoRDMA reports that RDMA is unusable: the device does not open,
	// has no RoCE v2 GID, or the peer announced no CapRDMA (one-sided
	// operations need RDMA; messages then go over TCP).
	ErrNoRDMA = errors.New("rdma: RDMA not available")
	// ErrNoRegion reports a one-sided access to a region the peer has not
	// advertised.
	ErrNoRegion = errors.New("rdma: no such remote region")
	// ErrOutOfRange reports a one-sided access outside the advertised
	// region; it is refused at the origin, before anything is posted
	// (a remote access error would kill the queue pair).
	ErrOutOfRange = errors.New("rdma: access outside the remote region")
	// ErrQueueFull reports a Send refused because the frames queued for
	// the peer, waiting for credits, exceed Config.MaxQueued bytes.
	ErrQueueFull = errors.New("rdma: send queue full")
	// ErrSetup reports a failed RDMA connection setup (bad control
	// message, refused, timed out).
	ErrSetup = errors.New("rdma: connection setup failed")
)

// RegionError is a one-sided access refused at the origin. It matches
// ErrNoRegion or ErrOutOfRange.
type RegionError struct {
	Peer   uint32
	Region string
	Offset uint64
	Length uint64
	Size   uint64 // the advertised size (0 for ErrNoRegion)
	Err    error
}

func (e *RegionError) Error() string {
	if errors.Is(e.Err, ErrNoRegion) {
		return fmt.Sprintf("rdma: node %d advertises no region %q", e.Peer, e.Region)
	}
	return fmt.Sprintf("rdma: %d bytes at offset %d of region %q on node %d (%d bytes): %v",
		e.Length, e.Offset, e.Region, e.Peer, e.Size, e.Err)
}

func (e *RegionError) Unwrap() error { return e.Err }
