package bcship

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bcship/bcship/bundle"
	"github.com/bcship/bcship/internal/chase"
)

// chaseLoop walks the chase repeatedly until a walk fails, and reports the
// error and when it came back.
func chaseLoop(ctx context.Context, origin *Node, code *bundle.Bundle, l *chase.List, links int) (chan error, chan time.Time) {
	errc, at := make(chan error, 1), make(chan time.Time, 1)
	go func() {
		for {
			_, err := origin.Invoke(ctx, uint32(l.Head>>32), code, "chase", chase.Walk{Key: l.Head, Remaining: uint64(links)}.Bytes())
			if err != nil {
				at <- time.Now()
				errc <- err
				return
			}
		}
	}()
	return errc, at
}

// TestPeerDownMidChase closes a node while chases run through it: the
// origin's request fails with ErrPeerDown within a second, and the other
// nodes keep serving.
func TestPeerDownMidChase(t *testing.T) {
	peerDownMidChase(t, cluster(t, []uint32{1, 2, 3, 100}, func(c *Config) { c.DefaultTTL = 255 }))
}

// peerDownMidChase runs TestPeerDownMidChase on nodes 1, 2, 3 (data) and
// 100 (origin), whatever transport they use.
func peerDownMidChase(t *testing.T, nodes map[uint32]*Node) {
	t.Helper()
	l := chase.New([]uint32{1, 2, 3}, 3000, 11)
	registerList(t, nodes, l)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	walk(t, ctx, nodes[100], chaseCode(t), l, 300)

	errc, at := chaseLoop(ctx, nodes[100], chaseCode(t), l, 300)
	time.Sleep(50 * time.Millisecond)
	killed := time.Now()
	nodes[3].Close()
	var err error
	select {
	case err = <-errc:
	case <-time.After(5 * time.Second):
		t.Fatal("no error 5s after node 3 died: the origin hangs")
	}
	if d := (<-at).Sub(killed); d > time.Second {
		t.Errorf("ErrPeerDown came %v after the kill, want ≤ 1s", d)
	}
	if !errors.Is(err, ErrPeerDown) {
		t.Fatalf("chase through a dead node: %v, want ErrPeerDown", err)
	}
	t.Logf("after kill: %v", err)

	// Walks that need node 3 fail fast; the survivors keep serving.
	t0 := time.Now()
	_, err = nodes[100].Invoke(ctx, uint32(l.Head>>32), chaseCode(t), "chase", chase.Walk{Key: l.Head, Remaining: 300}.Bytes())
	if !errors.Is(err, ErrPeerDown) || time.Since(t0) > time.Second {
		t.Errorf("chase needing dead node 3: %v after %v", err, time.Since(t0))
	}
	waitPeerGone(t, nodes[100], 3) // see TestProcesses
	survivors := chase.New([]uint32{1, 2}, 500, 12)
	for id, r := range survivors.Regions {
		nodes[id].RegisterRegion("chase", r)
	}
	walk(t, ctx, nodes[100], chaseCode(t), survivors, 200)
}

// TestPeerDownHeldRequest kills the node that holds a request (its kernel
// is spinning): the origin learns within a second.
func TestPeerDownHeldRequest(t *testing.T) {
	code := nodetest.get(t)
	nodes := cluster(t, []uint32{1, 2, 3}, func(c *Config) { c.Deadline = 10 * time.Second })
	ctx := context.Background()
	echoOK(t, nodes[1], 3)
	errc := make(chan error, 1)
	go func() {
		_, err := nodes[1].Invoke(ctx, 3, code, "spin", nil)
		errc <- err
	}()
	time.Sleep(100 * time.Millisecond)
	killed := time.Now()
	go nodes[3].Close()
	select {
	case err := <-errc:
		if d := time.Since(killed); d > time.Second {
			t.Errorf("ErrPeerDown after %v", d)
		}
		if !errors.Is(err, ErrPeerDown) {
			t.Fatalf("got %v, want ErrPeerDown", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("origin hangs after its peer died")
	}
	echoOK(t, nodes[1], 2)
}
