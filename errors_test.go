package bcship

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/bcship/bcship/internal/chase"
	"github.com/bcship/bcship/wire"
)

// echoOK checks that node still runs code after a failure.
func echoOK(t *testing.T, origin *Node, node uint32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := origin.Invoke(ctx, node, nodetest.get(t), "echo", []byte("still alive"))
	if err != nil {
		t.Fatalf("follow-up echo on node %d: %v", node, err)
	}
	if string(res.Reply()) != "still alive" || res.Status != 11 {
		t.Fatalf("follow-up echo: %q, status %d", res.Reply(), res.Status)
	}
}

func wantRemote(t *testing.T, err error, sentinel error, code wire.ErrorCode, node uint32) *RemoteError {
	t.Helper()
	var re *RemoteError
	if !errors.As(err, &re) || !errors.Is(err, sentinel) {
		t.Fatalf("got %v, want a *RemoteError matching %v", err, sentinel)
	}
	if re.Code != code || re.Node != node {
		t.Fatalf("got code %v from node %d, want %v from node %d (%v)", re.Code, re.Node, code, node, err)
	}
	return re
}

func TestFaultingKernel(t *testing.T) {
	code := nodetest.get(t)
	nodes := cluster(t, []uint32{1, 2}, nil)
	ctx := context.Background()
	_, err := nodes[1].Invoke(ctx, 2, code, "fault", nil)
	re := wantRemote(t, err, ErrFault, wire.CodeFault, 2)
	t.Logf("fault: %v", re)
	if nodes[2].Stats().Faults != 1 {
		t.Errorf("node 2 counted %d faults", nodes[2].Stats().Faults)
	}
	echoOK(t, nodes[1], 2)
	// The origin itself survives a local fault too.
	_, err = nodes[1].Invoke(ctx, 1, code, "fault", nil)
	wantRemote(t, err, ErrFault, wire.CodeFault, 1)
	echoOK(t, nodes[1], 1)
}

func TestLoopingKernelDeadline(t *testing.T) {
	code := nodetest.get(t)
	nodes := cluster(t, []uint32{1, 2}, func(c *Config) { c.Deadline = 200 * time.Millisecond })
	t0 := time.Now()
	_, err := nodes[1].Invoke(context.Background(), 2, code, "spin", nil)
	wantRemote(t, err, ErrDeadline, wire.CodeDeadline, 2)
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("deadline of 200ms took %v", d)
	}
	echoOK(t, nodes[1], 2)

	// The origin's context deadline travels with the request.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = nodes[1].Invoke(ctx, 2, code, "spin", nil)
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrDeadline) {
		t.Fatalf("spin under a 300ms context: %v", err)
	}
	echoOK(t, nodes[1], 2)
}

func TestTTLExhausted(t *testing.T) {
	code := nodetest.get(t)
	nodes := cluster(t, []uint32{1, 2, 3}, func(c *Config) { c.DefaultTTL = 9 })
	_, err := nodes[3].Invoke(context.Background(), 1, code, "pingpong", []byte("x"))
	re := wantRemote(t, err, ErrTTLExhausted, wire.CodeTTLExhausted, 2)
	t.Logf("ttl: %v", re)
	echoOK(t, nodes[3], 1)
	echoOK(t, nodes[3], 2)
}

func TestNoReplyEndsChain(t *testing.T) {
	code := nodetest.get(t)
	nodes := cluster(t, []uint32{1, 2}, nil)
	res, err := nodes[1].Invoke(context.Background(), 2, code, "noreply", nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != 42 || len(res.Replies) != 0 || res.Node != 2 {
		t.Fatalf("noreply: %+v", res)
	}
}

func TestUnknownEntry(t *testing.T) {
	code := nodetest.get(t)
	nodes := cluster(t, []uint32{1, 2}, nil)
	_, err := nodes[1].Invoke(context.Background(), 2, code, "nosuch", nil)
	wantRemote(t, err, ErrNoEntry, wire.CodeNoEntry, 2)
	echoOK(t, nodes[1], 2)
}

func TestSignedCode(t *testing.T) {
	code, pub := signed(t, chaseCode(t))
	nodes := cluster(t, []uint32{1, 2}, func(c *Config) {
		c.Insecure = false
		if c.ID == 2 {
			c.Trust = []ed25519.PublicKey{pub}
		}
	})
	l := chase.New([]uint32{2}, 10, 1)
	registerList(t, nodes, l)
	ctx := context.Background()
	arg := chase.Walk{Key: l.Head, Remaining: 5}.Bytes()

	// Unsigned: refused, however often it is asked.
	for range 2 {
		_, err := nodes[1].Invoke(ctx, 2, chaseCode(t), "chase", arg)
		wantRemote(t, err, ErrUntrusted, wire.CodeUntrusted, 2)
	}
	// Signed by a key node 2 does not trust.
	untrusted, _ := signed(t, chaseCode(t))
	_, err := nodes[1].Invoke(ctx, 2, untrusted, "chase", arg)
	wantRemote(t, err, ErrUntrusted, wire.CodeUntrusted, 2)
	// Signed by the trusted key.
	walk(t, ctx, nodes[1], code, l, 5)
}

func TestPutGetInvoke(t *testing.T) {
	code := nodetest.get(t)
	nodes := cluster(t, []uint32{1, 2, 3}, nil)
	mem := make([]byte, 64)
	if err := nodes[2].RegisterRegion("mem", mem); err != nil {
		t.Fatal(err)
	}
	x := func(node uint32, off uint64, data string) []byte {
		b := make([]byte, 64)
		binary.LittleEndian.PutUint32(b, node)
		binary.LittleEndian.PutUint32(b[4:], uint32(len(data)))
		binary.LittleEndian.PutUint64(b[8:], off)
		copy(b[16:], "mem")
		copy(b[32:], data)
		return b
	}
	ctx := context.Background()
	// putter on 3 writes to 2, then invokes echo on 2.
	arg := x(2, 8, "hello, region")
	res, err := nodes[1].Invoke(ctx, 3, code, "putter", arg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Node != 2 || !bytes.Equal(res.Reply(), arg) || res.Hops != 1 {
		t.Fatalf("putter: node %d, hops %d, reply %q", res.Node, res.Hops, res.Reply())
	}
	// getter on 3 fetches from 2 and continues on 3. (The region is read
	// through node 2 rather than directly: the PUT was applied by node 2's
	// reader for node 3's connection, which also serves this GET.)
	res, err = nodes[1].Invoke(ctx, 3, code, "getter", x(2, 8, "0123456789abc"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Node != 3 || res.Status != 3 || string(res.Reply()) != "hello, region" {
		t.Fatalf("getter: node %d status %d reply %q", res.Node, res.Status, res.Reply())
	}
	// A GET out of range fails the chain with a typed error.
	// (node 3, where the chain was, reports it).
	_, err = nodes[1].Invoke(ctx, 3, code, "getter", x(2, 60, "0123456789abc"))
	wantRemote(t, err, ErrOutOfRange, wire.CodeOutOfRange, 3)

	// The origin API.
	if err := nodes[3].Put(ctx, 2, "mem", 0, []byte("abc")); err != nil {
		t.Fatal(err)
	}
	d, err := nodes[3].Get(ctx, 2, "mem", 0, 5)
	if err != nil || string(d) != "abc\x00\x00" {
		t.Fatalf("Get = %q, %v", d, err)
	}
	_, err = nodes[3].Get(ctx, 2, "mem", 60, 5)
	wantRemote(t, err, ErrOutOfRange, wire.CodeOutOfRange, 2)
	_, err = nodes[3].Get(ctx, 2, "nosuch", 0, 1)
	wantRemote(t, err, ErrNoRegion, wire.CodeNoRegion, 2)
	err = nodes[3].Put(ctx, 2, "mem", 1<<40, []byte("x"))
	wantRemote(t, err, ErrOutOfRange, wire.CodeOutOfRange, 2)
	if rtt, err := nodes[1].Ping(ctx, 2); err != nil {
		t.Fatal(err)
	} else {
		t.Logf("ping 1→2: %v", rtt)
	}
}

func TestContextCancel(t *testing.T) {
	code := nodetest.get(t)
	nodes := cluster(t, []uint32{1, 2}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	t0 := time.Now()
	_, err := nodes[1].Invoke(ctx, 2, code, "spin", nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled invoke: %v", err)
	}
	if d := time.Since(t0); d > time.Second {
		t.Fatalf("cancel took %v", d)
	}
}
