package bcship

import (
	"errors"
	"runtime"
	"testing"
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
