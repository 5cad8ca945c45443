package cycles

import (
	"testing"
	"time"
)

func TestNowAdvances(t *testing.T) {
	a := Now()
	time.Sleep(time.Millisecond)
	if b := Now(); b <= a {
		t.Fatalf("counter did not advance: %d then %d", a, b)
	}
	if f := PerMicrosecond(10 * time.Millisecond); f <= 0 {
		t.Fatalf("calibration %v", f)
	}
}
