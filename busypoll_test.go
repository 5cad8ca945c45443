package bcship

import (
	"context"
	"testing"
	"time"

	"github.com/bcship/bcship/internal/chase"
)

// busyCluster is cluster with Config.BusyPoll: callers read their answers
// from the sockets themselves (transport/tcp Drive).
func busyCluster(t *testing.T, ids []uint32) map[uint32]*Node {
	return cluster(t, ids, func(c *Config) { c.DefaultTTL = 255; c.BusyPoll = true })
}

// TestBusyPollChase runs the chase across three busy-polling data nodes
// from a client: the answer of a chain comes from whichever node ends it,
// over a connection the waiting caller reads itself, and every walk is
// right (walk checks it against Go).
func TestBusyPollChase(t *testing.T) {
	nodes := busyCluster(t, []uint32{1, 2, 3, 100})
	l := chase.New([]uint32{1, 2, 3}, 300, 11)
	registerList(t, nodes, l)
	code := chaseCode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, hops := range []int{0, 1, 5, 200} {
		for range 3 {
			walk(t, ctx, nodes[100], code, l, hops)
		}
	}
	// Plain round trips to each node, in a row: the drive and the read
	// loops hand the sockets back and forth without losing a frame.
	for i := range 300 {
		id := uint32(1 + i%3)
		if _, err := nodes[100].Ping(ctx, id); err != nil {
			t.Fatalf("ping %d to node %d: %v", i, id, err)
		}
	}
}

// TestBusyPollPeerDown is TestPeerDownMidChase with busy-polling nodes.
func TestBusyPollPeerDown(t *testing.T) {
	peerDownMidChase(t, busyCluster(t, []uint32{1, 2, 3, 100}))
}
