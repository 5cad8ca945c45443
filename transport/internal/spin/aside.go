package spin

import (
	"sync"
	"sync/atomic"
)

// Aside is where a transport's receive loops wait while callers drive
// (transport.Driver): a driving caller does the loops' polling itself,
// and two pollers of one ring or socket would only contend. The zero
// value is ready.
type Aside struct {
	drivers atomic.Int32
	mu      sync.Mutex
	ch      chan struct{} // closed when the last driver leaves; nil while no loop waits
}

// Enter counts a caller that begins to drive.
func (a *Aside) Enter() { a.drivers.Add(1) }

// Leave counts a driver out; the last one out releases the waiting loops.
func (a *Aside) Leave() {
	if a.drivers.Add(-1) != 0 {
		return
	}
	a.mu.Lock()
	if a.ch != nil && a.drivers.Load() == 0 {
		close(a.ch)
		a.ch = nil
	}
	a.mu.Unlock()
}

// Active reports whether a caller drives.
func (a *Aside) Active() bool { return a.drivers.Load() > 0 }

// Wait returns once no caller drives, or when stop is closed.
func (a *Aside) Wait(stop <-chan struct{}) {
	a.mu.Lock()
	if a.drivers.Load() == 0 {
		a.mu.Unlock()
		return
	}
	if a.ch == nil {
		a.ch = make(chan struct{})
	}
	ch := a.ch
	a.mu.Unlock()
	select {
	case <-ch:
	case <-stop:
	}
}
