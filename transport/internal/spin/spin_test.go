package spin

import (
	"testing"
	"time"
)

// A Pacer lets a loop go on for its budget, then stops it; looks between
// yields cost no clock read, so a short wait is not slowed by one.
func TestPacerBudget(t *testing.T) {
	var p Pacer
	t0 := time.Now()
	looks := 0
	for p.Next(16, time.Millisecond) {
		looks++
		if time.Since(t0) > time.Second {
			t.Fatal("the pacer never stopped the loop")
		}
	}
	if d := time.Since(t0); d < time.Millisecond {
		t.Errorf("stopped after %v, before its budget of 1ms", d)
	}
	if looks < 16 {
		t.Errorf("only %d looks", looks)
	}
	var q Pacer
	for range 15 {
		if !q.Next(16, 0) {
			t.Fatal("stopped before the first yield")
		}
	}
	if !q.start.IsZero() {
		t.Error("the clock started before the first yield")
	}
}

// Yield runs at every yield and nowhere else.
func TestPacerYield(t *testing.T) {
	yields := 0
	p := Pacer{Yield: func() { yields++ }}
	for range 64 {
		if !p.Next(16, time.Minute) {
			t.Fatal("stopped within its budget")
		}
	}
	if yields != 4 {
		t.Errorf("Yield ran %d times in 64 looks at one yield per 16, want 4", yields)
	}
}
