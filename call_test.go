package bcship

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"testing"

	"github.com/bcship/bcship/wire"
)

// TestCallCompletion: a call completed by another goroutine at any moment
// is seen by its caller, whether the caller polls it (a driver), blocks on
// it, or starts blocking after it completed, and the caller sees what the
// completion stored.
func TestCallCompletion(t *testing.T) {
	n := &Node{}
	errDone := errors.New("done")
	for i := range 3000 {
		c := n.newCall(2, false, clock())
		go func() {
			for range i % 7 {
				runtime.Gosched()
			}
			c.complete(&c.result, nil, errDone)
		}()
		switch i % 3 {
		case 0: // drive, as transport.Driver does
			for !c.Answered() {
				runtime.Gosched()
			}
		case 1: // block at once
			if ch := c.block(); ch != nil {
				<-ch
			}
		case 2: // poll a little, then block
			for range i % 5 {
				if c.Answered() {
					break
				}
				runtime.Gosched()
			}
			if ch := c.block(); ch != nil {
				<-ch
			}
		}
		if !c.Answered() || c.err != errDone || c.res != &c.result {
			t.Fatalf("call %d: answered %v, err %v, res %p", i, c.Answered(), c.err, c.res)
		}
	}
}

// TestCallKeepsReplies: the replies a call collects are its own, whatever
// later becomes of the RESULTs' memory (the transport's), in arrival order
// and whatever their sizes: the first short one lives in the call itself
// (call.keep), the others in memory of their own.
func TestCallKeepsReplies(t *testing.T) {
	n := idleNode(t, 1)
	for _, sizes := range [][]int{{5}, {64}, {65}, {0, 3}, {7, 9, 64, 200}, {300, 2}} {
		c := n.newCall(2, true, clock())
		if err := n.register(c); err != nil {
			t.Fatal(err)
		}
		frame := make([]byte, 512) // reused for every RESULT, as a read buffer is
		var want [][]byte
		for i, size := range sizes {
			reply := frame[:size]
			for k := range reply {
				reply[k] = byte(i*31 + k)
			}
			want = append(want, bytes.Clone(reply))
			var flags uint16
			if i < len(sizes)-1 {
				flags = FlagMore
			}
			n.onResult(2, wire.Header{Flags: flags}, &wire.Result{OriginRequest: c.id, Reply: reply})
		}
		for k := range frame {
			frame[k] = 0xee
		}
		if !c.Answered() {
			t.Fatalf("sizes %v: call not complete after its last RESULT", sizes)
		}
		got := c.res.Replies
		if len(sizes) == 1 && sizes[0] == 0 {
			want = nil
		}
		if len(got) != len(want) {
			t.Fatalf("sizes %v: %d replies, want %d", sizes, len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Errorf("sizes %v: reply %d is %x, want %x", sizes, i, got[i], want[i])
			}
		}
	}
}

// TestResultsStayTheCallers: every request has a call of its own, taken
// from the node's spare or made anew (newCall, makeSpare), and the results
// of earlier requests are untouched by later ones, busy-polling or not.
func TestResultsStayTheCallers(t *testing.T) {
	code := nodetest.get(t)
	for _, busy := range []bool{false, true} {
		nodes := cluster(t, []uint32{1, 2}, func(c *Config) { c.BusyPoll = busy })
		ctx := context.Background()
		h, err := nodes[1].AddCode(code)
		if err != nil {
			t.Fatal(err)
		}
		nodes[2].RegisterAM("echo", code, "echo")
		var results []*Result
		var args [][]byte
		for i := range 40 {
			arg := bytes.Repeat([]byte{byte(i)}, 1+i%70) // short and long replies
			var res *Result
			if i%2 == 0 {
				res, err = nodes[1].InvokeHash(ctx, 2, h, "echo", arg)
			} else {
				res, err = nodes[1].CallAM(ctx, 2, "echo", arg)
			}
			if err != nil {
				t.Fatal(err)
			}
			for k, r := range results {
				if r == res {
					t.Fatalf("busy=%v: request %d returned the result of request %d", busy, i, k)
				}
			}
			results, args = append(results, res), append(args, arg)
		}
		for i, r := range results {
			if len(r.Replies) != 1 || !bytes.Equal(r.Replies[0], args[i]) || r.Node != 2 {
				t.Errorf("busy=%v: result %d changed: node %d, replies %x, want %x", busy, i, r.Node, r.Replies, args[i])
			}
		}
	}
}
