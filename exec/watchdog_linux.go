//go:build linux && (amd64 || arm64)

package exec

import (
	"context"
	"math"
	"sync/atomic"
	"time"
)

// The watchdog enforces the deadlines of CallUntil that lie further than
// preciseWithin, and Options.Context, for every call at once: one goroutine
// per Executor with one Go timer, aimed at the earliest deadline of the
// calls it watches. A call only publishes itself (three atomic stores) and
// wakes the watchdog when its deadline is earlier than the watchdog's next
// look, which is rare when every call gets the same timeout: no timer, no
// AfterFunc, no clock read and no allocation per call.

// epoch is the origin of the watchdog's monotonic nanoseconds: a
// time.Time's Sub against it uses the monotonic readings only.
var epoch = time.Now()

// never is a deadline (monotonic ns since epoch) that does not come.
const never = math.MaxInt64

// run is what the watchdog knows of the call on one stack. A call writes
// tid and deadline before token, and clears token when it returns; the
// watchdog reads token first. A stale read (the call returned, another
// started on the stack) only sends a signal with a stale token, which the
// handler drops.
type run struct {
	token    atomic.Uint64 // slot.token of the watched call; 0: none
	tid      atomic.Int32
	deadline atomic.Int64 // monotonic ns since epoch; never: none
}

// watch publishes the call with token on stack i, running on thread tid,
// to the watchdog. It returns false, publishing nothing, when
// Options.Context is already done.
func (e *Executor) watch(i int, tid int, token uint64, deadline int64) bool {
	r := &e.runs[i]
	r.tid.Store(int32(tid))
	r.deadline.Store(deadline)
	r.token.Store(token)
	// Either the canceller's scan sees token, or this load sees its flag;
	// the same pairing with wakeAt below (see watchdog).
	if e.cancelled.Load() {
		r.token.Store(0)
		return false
	}
	if w := e.wakeAt.Load(); w == 0 || deadline < w {
		e.kickWatchdog()
	}
	return true
}

// unwatch withdraws the call on stack i.
func (e *Executor) unwatch(i int) { e.runs[i].token.Store(0) }

func (e *Executor) kickWatchdog() {
	select {
	case e.kick <- struct{}{}:
	default: // a kick is pending: the watchdog looks again anyway
	}
}

// cancelAll aborts every call in flight and makes later calls fail: it
// runs when Options.Context is done.
func (e *Executor) cancelAll() {
	e.cancelled.Store(true)
	e.kickWatchdog()
}

// cancelCause is the cause of an abort by Options.Context.
func (e *Executor) cancelCause() error {
	if err := context.Cause(e.opts.Context); err != nil {
		return err
	}
	return context.Canceled
}

// watchdog runs until Close. Each look sets wakeAt to 0 first, so a call
// that publishes during the scan and is missed by it kicks again; then it
// signals every call past its deadline (all of them once cancelled), and
// sleeps until the earliest remaining deadline, or, while aborted calls
// have not returned yet, until it is time to repeat their signals (the
// first can arrive before the thread is on the native stack, and is then
// dropped). wakeAt is never while nothing is watched: the next call kicks.
func (e *Executor) watchdog() {
	defer close(e.watchdogDone)
	t := time.NewTimer(time.Hour)
	t.Stop()
	resend := resendFirst
	for {
		select {
		case <-e.kick:
		case <-t.C:
		case <-e.done:
			t.Stop()
			return
		}
		e.wakeAt.Store(0)
		now := time.Since(epoch).Nanoseconds()
		cancelled := e.cancelled.Load()
		next, aborting := int64(never), false
		for i := range e.runs {
			r := &e.runs[i]
			tok := r.token.Load()
			if tok == 0 {
				continue
			}
			tid, dl := r.tid.Load(), r.deadline.Load()
			if cancelled || dl <= now {
				sendAbort(e.pid, int(tid), tok)
				aborting = true
				continue
			}
			next = min(next, dl)
		}
		if aborting {
			next = min(next, now+resend.Nanoseconds())
			resend = min(2*resend, resendMax)
		} else {
			resend = resendFirst
		}
		if next != never {
			t.Reset(time.Duration(next - now))
		} else {
			t.Stop()
		}
		e.wakeAt.CompareAndSwap(0, next)
	}
}
