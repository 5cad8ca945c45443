package bcship

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
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

// TestArgsOutliveTheirFrames: an argument that goes to a goroutine with its
// job is the job's own, not the transport's buffer (transport.Handler: a
// message is the transport's until the handler returns). Slow runs never
// qualify for the read loop, so each of many pipelined invocations waits
// for a goroutine while the read loop decodes the next frames into the
// buffer its argument came in; each must still run with its own argument.
func TestArgsOutliveTheirFrames(t *testing.T) {
	code := nodetest.get(t)
	nodes := cluster(t, []uint32{1, 2}, nil)
	ctx := context.Background()
	busy := func(count uint64) (uint64, error) {
		res, err := nodes[1].Invoke(ctx, 2, code, "busy", binary.LittleEndian.AppendUint64(nil, count))
		if err != nil {
			return 0, err
		}
		if len(res.Replies) != 1 || len(res.Replies[0]) != 8 {
			return 0, fmt.Errorf("replies %x, want one count", res.Replies)
		}
		return binary.LittleEndian.Uint64(res.Replies[0]), nil
	}
	// A count that keeps the kernel busy for ≈2 ms, well over inlineMax,
	// timed once the code is shipped and loaded (the first call).
	if _, err := busy(0); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if _, err := busy(1 << 22); err != nil {
		t.Fatal(err)
	}
	slow := uint64(float64(1<<22) * float64(2*time.Millisecond) / float64(time.Since(t0)))
	slow = max(slow, 1<<10)
	const calls = 64
	errs := make(chan error, calls)
	for i := range uint64(calls) {
		go func() {
			got, err := busy(slow + i)
			if err == nil && got != slow+i {
				err = fmt.Errorf("sent count %d, the kernel ran with %d", slow+i, got)
			}
			errs <- err
		}()
	}
	for range calls {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if nodes[2].cache.fast(code.Hash(), "busy") {
		t.Error("slow runs qualified for the read loop: the test ran nothing on goroutines")
	}
}

// TestRepliesOutliveTheirFrames: a reply is the caller's, not the
// transport's buffer: many echoes in flight at once, their RESULTs read
// back to back, each caller gets its own argument back. Half the replies
// are short: those the call keeps in its own memory (call.keep).
func TestRepliesOutliveTheirFrames(t *testing.T) {
	code := nodetest.get(t)
	nodes := cluster(t, []uint32{1, 2}, nil)
	ctx := context.Background()
	if _, err := nodes[1].Invoke(ctx, 2, code, "echo", []byte("warm")); err != nil {
		t.Fatal(err)
	}
	const calls = 200
	errs := make(chan error, calls)
	for i := range calls {
		go func() {
			reps := 500 + i
			if i%2 == 1 {
				reps = 1 + i%32 // 2 to 64 bytes
			}
			arg := bytes.Repeat([]byte{byte(i), byte(i >> 8)}, reps)
			res, err := nodes[1].Invoke(ctx, 2, code, "echo", arg)
			switch {
			case err != nil:
			case len(res.Replies) != 1:
				err = fmt.Errorf("call %d: %d replies", i, len(res.Replies))
			default:
				time.Sleep(time.Millisecond) // while later RESULTs are read
				if !bytes.Equal(res.Replies[0], arg) {
					err = fmt.Errorf("call %d: the reply is not its argument", i)
				}
			}
			errs <- err
		}()
	}
	for range calls {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestGetDataOutlivesItsFrame is TestRepliesOutliveTheirFrames for GET.
func TestGetDataOutlivesItsFrame(t *testing.T) {
	nodes := cluster(t, []uint32{1, 2}, nil)
	region := make([]byte, 1<<20)
	for i := range region {
		region[i] = byte(i * 13 >> 8)
	}
	nodes[2].RegisterRegion("r", region)
	ctx := context.Background()
	const calls = 200
	errs := make(chan error, calls)
	for i := range calls {
		go func() {
			off, n := uint64(i*4099), uint32(1000+i)
			got, err := nodes[1].Get(ctx, 2, "r", off, n)
			if err == nil {
				time.Sleep(time.Millisecond) // while later replies are read
				if !bytes.Equal(got, region[off:off+uint64(n)]) {
					err = fmt.Errorf("get %d: not the region's bytes", i)
				}
			}
			errs <- err
		}()
	}
	for range calls {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
