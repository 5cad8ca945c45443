package bcship

import (
	"bytes"
	"sync/atomic"
	"time"
)

// Inline execution.
//
// A kernel normally runs on a goroutine of its own, so a slow one cannot hold
// up the connection it arrived on. For a pointer chase that hand-off is most
// of a hop: the read loop wakes a goroutine, which runs a kernel for a few
// microseconds and writes the FORWARD. Code that has proven fast therefore
// runs on the read loop itself. "Fast" is what the code did last time: it
// returned within inlineMax, without a fault, producing at most
// inlineOutboxMax bytes of outbox, for an argument of at most inlineArgMax.
// A kernel that turns slow costs its connection one slow run, then goes
// back to its own goroutine. The transport does not count time in the
// handler as silence, so a peer is never declared dead for it.
const (
	inlineMax       = 200 * time.Microsecond
	inlineArgMax    = 64 << 10
	inlineOutboxMax = 64 << 10
)

// speed remembers whether an entry's last run qualified it for inline
// execution. It is kept per entry, not per code: one slow entry must not
// be re-qualified by a quick run of another.
type speed struct {
	fast atomic.Bool
}

func (s *speed) record(d time.Duration, outbox uint64, ok bool) {
	s.fast.Store(ok && d < inlineMax && outbox <= inlineOutboxMax)
}

// dispatch runs j inline when its code has proven fast, else a copy on a
// goroutine. deadline is the chain's as received: milliseconds from now,
// 0 for none.
func (n *Node) dispatch(j *job, deadline uint32) {
	if len(j.arg) <= inlineArgMax {
		if j.am != "" {
			if h := n.amHandler(j.am); h != nil && h.speed.fast.Load() {
				entry := j.entry
				if entry == "" {
					entry = h.entry
				}
				if r, err := h.lookup(entry); err == nil {
					n.runInline(j, deadline, r, entry)
					return
				}
			}
		} else if e := n.cache.acquire(j.hash); e != nil {
			if r := e.fastEntry(j.entry); r != nil {
				n.stats.cacheHits.Add(1)
				n.runInline(j, deadline, r, j.entry)
				n.cache.release(e)
				return
			}
			n.cache.release(e)
		}
	}
	if deadline > 0 {
		j.setDeadline(clock(), deadline)
	}
	hj := *j
	hj.arg = bytes.Clone(j.arg) // j.arg is the transport's (transport.Handler)
	n.goRun(func() { n.execute(&hj, time.Time{}) })
}

// runInline runs entry, resolved to r, on the caller's goroutine.
func (n *Node) runInline(j *job, deadline uint32, r *entryRec, entry string) {
	t0 := clock()
	j.setDeadline(t0, deadline)
	n.runEntry(j, t0, r, entry)
}
