package bcship

import (
	"context"
	"encoding/binary"
	"testing"
	"time"
)

// TestInlineDemotion: code that ran fast runs on the connection's read loop;
// when such a run turns slow it holds up that connection once (no peer is
// declared dead for it), and the code then runs on its own goroutine again,
// so a slow run no longer delays other requests.
func TestInlineDemotion(t *testing.T) {
	code := nodetest.get(t)
	nodes := cluster(t, []uint32{1, 2}, nil)
	ctx := context.Background()
	busy := func(count uint64) (time.Duration, error) {
		t0 := time.Now()
		_, err := nodes[1].Invoke(ctx, 2, code, "busy", binary.LittleEndian.AppendUint64(nil, count))
		return time.Since(t0), err
	}
	// Calibrate a count that keeps the kernel busy for ≈300 ms.
	d, err := busy(1 << 24)
	if err != nil {
		t.Fatal(err)
	}
	slow := uint64(float64(1<<24) * float64(300*time.Millisecond) / float64(d))
	fastAgain := func() {
		t.Helper()
		if _, err := busy(0); err != nil {
			t.Fatal(err)
		}
		if !nodes[2].cache.fast(code.Hash(), "busy") {
			t.Fatal("a quick run did not make the code eligible to run inline")
		}
	}
	// overlap runs a slow busy and, 50 ms into it, an echo; it returns when
	// each finished, measured from the start.
	overlap := func() (busyDone, echoDone time.Duration) {
		t0 := time.Now()
		done := make(chan error, 1)
		go func() {
			_, err := busy(slow)
			busyDone = time.Since(t0)
			done <- err
		}()
		time.Sleep(50 * time.Millisecond)
		echoOK(t, nodes[1], 2)
		echoDone = time.Since(t0)
		if err := <-done; err != nil {
			t.Fatalf("slow run: %v", err)
		}
		return busyDone, echoDone
	}

	fastAgain()
	b1, e1 := overlap() // runs inline: the echo waits behind it
	if nodes[2].cache.fast(code.Hash(), "busy") {
		t.Fatal("a slow run left the code eligible to run inline")
	}
	b2, e2 := overlap() // on its own goroutine: the echo does not wait
	t.Logf("inline: busy %v, echo %v; demoted: busy %v, echo %v", b1, e1, b2, e2)
	if e1 < b1-50*time.Millisecond {
		t.Errorf("echo (%v) did not wait for the inline run (%v): it did not run inline", e1, b1)
	}
	if e2 >= b2 {
		t.Errorf("echo (%v) waited for the demoted run (%v)", e2, b2)
	}
}
