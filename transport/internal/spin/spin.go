// Package spin is what the transports' pollers share. Pacer paces a
// goroutine that polls for something (a ring's head, a socket) instead of
// blocking: it yields the processor every so many looks, since on a
// machine with few cores the goroutine it waits for may need that
// processor, and it gives up after a budget of time, since a poller must
// not hold a core for a wait that turns out long. Aside is where receive
// loops wait while callers poll in their place.
package spin

import (
	"runtime"
	"time"
)

// Pacer paces one polling loop. The zero value is ready; its clock starts
// at the first yield, so a wait that ends within the first looks reads no
// clock at all.
type Pacer struct {
	// Yield, when set, is called at each yield before the processor is
	// given up: work a poller owes others while it spins (transport/tcp
	// wakes parked read loops there).
	Yield func()

	looks int
	start time.Time
}

// Next is called after each look that found nothing. It yields the
// processor every every-th look and reports false once budget has passed
// since the first yield: the caller should stop polling then.
func (p *Pacer) Next(every int, budget time.Duration) bool {
	p.looks++
	if p.looks%every != 0 {
		return true
	}
	if p.start.IsZero() {
		p.start = time.Now()
	} else if time.Since(p.start) > budget {
		return false
	}
	if p.Yield != nil {
		p.Yield()
	}
	runtime.Gosched()
	return true
}
