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
// per Executor with one Go timer. A call only publishes itself (three
// atomic stores) and wakes the watchdog when its deadline comes before the
// watchdog's next look: no timer, no AfterFunc, no clock read and no
// allocation per call.
//
// While calls come, the watchdog looks at least every period, half the
// time left to the deadline of the call that last woke it: a later call
// with a similar timeout then finds the next look before its deadline and
// needs not wake it, even when each deadline is earlier than the one before
// (a chain's deadline, which shrinks with every hop). A look that finds a
// call running sleeps until that call's deadline at most, so a call that
// outlives its deadline is aborted on time. After a period without calls
// the watchdog sleeps until woken.

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
// to the watchdog; its deadline is left from now (never: none). It returns
// false, publishing nothing, when Options.Context is already done.
func (e *Executor) watch(i int, tid int, token uint64, deadline int64, left time.Duration) bool {
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
	if deadline == never {
		return true
	}
	if !e.active.Load() {
		e.active.Store(true)
	}
	if deadline < e.wakeAt.Load() {
		e.kickLeft.Store(int64(left))
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

// watchdog runs until Close. A look signals every call past its deadline
// (all of them once cancelled), and sleeps until the earliest remaining
// deadline, the end of its period, or, while aborted calls have not
// returned yet, the time to repeat their signals (the first can arrive
// before the thread is on the native stack, and is then dropped).
//
// A call publishes its token, then loads wakeAt; a look stores wakeAt, then
// scans the tokens again. So a call missed by the first scan either sees
// the new wakeAt (and kicks if its deadline comes first) or is seen by the
// second scan, which can only bring wakeAt earlier.
func (e *Executor) watchdog() {
	defer close(e.watchdogDone)
	t := time.NewTimer(time.Hour)
	t.Stop()
	resend := resendFirst
	var period int64     // 0: no calls lately
	var lastActive int64 // when a look last found calls
	for {
		select {
		case <-e.kick:
		case <-t.C:
		case <-e.done:
			t.Stop()
			return
		}
		e.looks.Add(1)
		now := time.Since(epoch).Nanoseconds()
		next, aborting := e.scan(now)
		if aborting {
			next = min(next, now+resend.Nanoseconds())
			resend = min(2*resend, resendMax)
		} else {
			resend = resendFirst
		}
		if left := e.kickLeft.Swap(0); left > 0 {
			if half := max(left/2, int64(preciseWithin)); period == 0 || half < period {
				period = half
			}
		}
		if e.active.Swap(false) || next != never {
			lastActive = now
		}
		if period > 0 {
			if now-lastActive < period {
				next = min(next, now+period)
			} else {
				period = 0 // a whole period without calls: sleep until kicked
			}
		}
		e.wakeAt.Store(next)
		again, ab := e.scan(now)
		if ab {
			again = min(again, now+resendFirst.Nanoseconds())
		}
		if again < next {
			next = again
			e.wakeAt.Store(next)
		}
		if next != never {
			t.Reset(time.Duration(next - now))
		} else {
			t.Stop()
		}
	}
}

// scan signals the watched calls past their deadline at now (all of them
// once cancelled) and returns the earliest deadline of the others.
func (e *Executor) scan(now int64) (next int64, aborting bool) {
	cancelled := e.cancelled.Load()
	next = never
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
	return next, aborting
}
