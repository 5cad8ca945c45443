package bcship

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/bcship/bcship/internal/chase"
)

// msgCounter is a slog.Handler that counts records by message (at every
// level), so a test can see what a transport did.
type msgCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *msgCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *msgCounter) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *msgCounter) WithGroup(string) slog.Handler            { return c }
func (c *msgCounter) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	c.n[r.Message]++
	c.mu.Unlock()
	return nil
}

func (c *msgCounter) count(msg string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[msg]
}

// shmCluster is cluster with Config.SharedMemory, counting log messages.
func shmCluster(t *testing.T, ids []uint32) (map[uint32]*Node, *msgCounter) {
	logs := &msgCounter{n: map[string]int{}}
	nodes := cluster(t, ids, func(c *Config) {
		c.DefaultTTL = 255
		c.SharedMemory = true
		c.Logger = slog.New(logs)
	})
	return nodes, logs
}

// TestSharedMemoryChase runs the chase across three data nodes and a
// client, all on transport/shm: the pairs set up shared memory, the walk
// is right, and the second run sends no code.
func TestSharedMemoryChase(t *testing.T) {
	nodes, logs := shmCluster(t, []uint32{1, 2, 3, 100})
	l := chase.New([]uint32{1, 2, 3}, 300, 7)
	registerList(t, nodes, l)
	code := chaseCode(t)
	origin := nodes[100]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	res := walk(t, ctx, origin, code, l, 200)
	s1 := origin.Stats()
	res2 := walk(t, ctx, origin, code, l, 200)
	s2 := origin.Stats()
	t.Logf("first run: %d hops in %v; second: %v", res.Hops, res.Elapsed, res2.Elapsed)
	if res.Hops < 50 {
		t.Errorf("only %d hops: the list is not spread", res.Hops)
	}
	if s2.Ships != s1.Ships {
		t.Errorf("second run shipped code again")
	}
	// Each pair that talked connected once, logged on both sides: the
	// origin with the node holding the head, and the data nodes among
	// themselves (forwards).
	if n := logs.count("shared memory connected"); n < 2*3 {
		t.Errorf("%d shared-memory connections logged, want at least 6 (3 pairs, both sides)", n)
	}
	if n := logs.count("no shared memory with peer; using TCP"); n != 0 {
		t.Errorf("%d pairs fell back to TCP on one host", n)
	}
}

// TestSharedMemoryPeerDown is TestPeerDownMidChase over shared memory.
func TestSharedMemoryPeerDown(t *testing.T) {
	nodes, _ := shmCluster(t, []uint32{1, 2, 3, 100})
	peerDownMidChase(t, nodes)
}

// Shared memory and RDMA are two transports; a node runs on one.
func TestSharedMemoryWithRDMA(t *testing.T) {
	n, err := NewNode(Config{ID: 1, Listen: "127.0.0.1:0", Insecure: true, SharedMemory: true, RDMADevice: "rxe0", Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.Start(context.Background()); !errors.Is(err, ErrConfig) {
		t.Fatalf("Start: %v, want ErrConfig", err)
	}
}
