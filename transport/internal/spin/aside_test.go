package spin

import (
	"testing"
	"time"
)

// Loops waiting aside are released when the last driver leaves, not
// before; a stop releases them too, and with no driver Wait returns at
// once.
func TestAside(t *testing.T) {
	var a Aside
	a.Wait(nil) // nobody drives
	a.Enter()
	a.Enter()
	if !a.Active() {
		t.Fatal("not active with two drivers")
	}
	released := make(chan struct{}, 2)
	for range 2 {
		go func() { a.Wait(nil); released <- struct{}{} }()
	}
	a.Leave()
	select {
	case <-released:
		t.Fatal("a loop was released while a driver was still in")
	case <-time.After(20 * time.Millisecond):
	}
	a.Leave()
	for range 2 {
		select {
		case <-released:
		case <-time.After(5 * time.Second):
			t.Fatal("the last driver out did not release the loops")
		}
	}
	if a.Active() {
		t.Fatal("active with no driver")
	}
	a.Enter()
	stop := make(chan struct{})
	go func() { a.Wait(stop); released <- struct{}{} }()
	close(stop)
	select {
	case <-released:
	case <-time.After(5 * time.Second):
		t.Fatal("stop did not release the loop")
	}
}
