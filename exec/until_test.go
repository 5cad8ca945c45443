//go:build linux && (amd64 || arm64)

package exec

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestCallUntil: a deadline beyond preciseWithin is the watchdog's, a
// nearer one gets a per-call timer; both abort a spinning kernel on time,
// and the Executor stays usable.
func TestCallUntil(t *testing.T) {
	e := newExecutor(t, Options{})
	now := time.Now()
	if r, err := e.CallUntil(now, now.Add(time.Hour), code["add"], nil, nil, 42); err != nil || r != 42 {
		t.Fatalf("add: got %d, %v", r, err)
	}
	if r, err := e.CallUntil(now, time.Time{}, code["add"], nil, nil, 7); err != nil || r != 7 {
		t.Fatalf("add without deadline: got %d, %v", r, err)
	}
	// Past deadline: not started.
	_, err := e.CallUntil(now, now.Add(-time.Millisecond), code["add"], nil, nil, 1)
	var a *AbortError
	if !errors.As(err, &a) || a.Started || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("past deadline: %v; want an AbortError that did not start", err)
	}
	slack := 250 * time.Millisecond
	if slow {
		slack = time.Second
	}
	for _, timeout := range []time.Duration{20 * time.Millisecond, 100 * time.Millisecond} {
		for range 2 {
			start := time.Now()
			_, err := e.CallUntil(start, start.Add(timeout), code["spin"], nil, nil, 0)
			el := time.Since(start)
			if !errors.Is(err, ErrDeadline) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("%v: got %v; want ErrDeadline and context.DeadlineExceeded", timeout, err)
			}
			if !errors.As(err, &a) || !a.Started || a.Symbol != "spin" {
				t.Fatalf("%#v: want a started abort in spin", err)
			}
			t.Logf("timeout %v: %v after %v", timeout, err, el)
			if el < timeout || el > timeout+slack {
				t.Fatalf("returned after %v, want %v..%v", el, timeout, timeout+slack)
			}
			goodCalls(t, e, 100)
		}
	}
}

// TestCallUntilConcurrent: the watchdog aborts every overdue call among
// many, whatever their order, and leaves the others alone.
func TestCallUntilConcurrent(t *testing.T) {
	e := newExecutor(t, Options{MaxStacks: 8})
	var wg sync.WaitGroup
	errs := make([]error, 6)
	start := time.Now()
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			now := time.Now()
			_, errs[i] = e.CallUntil(now, now.Add(time.Duration(60+40*(len(errs)-i))*time.Millisecond), code["spin"], nil, nil, 0)
		}()
	}
	// Quick calls meanwhile, with a deadline that does not come.
	for range 1000 {
		now := time.Now()
		if r, err := e.CallUntil(now, now.Add(time.Minute), code["add"], nil, nil, 3); err != nil || r != 3 {
			t.Fatalf("add: %d, %v", r, err)
		}
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, ErrDeadline) {
			t.Errorf("spin %d: %v; want ErrDeadline", i, err)
		}
	}
	if el, max := time.Since(start), 300*time.Millisecond+time.Second; el > max {
		t.Errorf("took %v, want under %v", el, max)
	}
}

// TestOptionsContext: when the Executor's context is done, calls in flight
// are aborted and later ones do not start.
func TestOptionsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := newExecutor(t, Options{Context: ctx})
	if r, err := e.Call(context.Background(), code["add"], nil, nil, 5); err != nil || r != 5 {
		t.Fatalf("add: %d, %v", r, err)
	}
	time.AfterFunc(50*time.Millisecond, cancel)
	now := time.Now()
	start := now
	_, err := e.CallUntil(now, now.Add(time.Hour), code["spin"], nil, nil, 0)
	var a *AbortError
	if !errors.As(err, &a) || !a.Started || !errors.Is(err, context.Canceled) {
		t.Fatalf("spin: %v; want a started abort matching context.Canceled", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("aborted after %v", el)
	}
	_, err = e.CallUntil(now, now.Add(time.Hour), code["add"], nil, nil, 1)
	if !errors.As(err, &a) || a.Started || !errors.Is(err, ErrDeadline) {
		t.Fatalf("after cancel: %v; want an AbortError that did not start", err)
	}
	if _, err := e.Call(context.Background(), code["add"], nil, nil, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("Call after cancel: %v", err)
	}
}

// TestCallUntilAllocs: the watchdog's path allocates nothing.
func TestCallUntilAllocs(t *testing.T) {
	e := newExecutor(t, Options{})
	now := time.Now()
	dl := now.Add(time.Hour)
	if n := testing.AllocsPerRun(1000, func() {
		if _, err := e.CallUntil(now, dl, code["add"], nil, nil, 1); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("%v allocations per CallUntil", n)
	}
}

func BenchmarkCallUntil(b *testing.B) {
	e := newExecutor(b, Options{})
	fn := code["empty"]
	now := time.Now()
	dl := now.Add(time.Hour)
	for b.Loop() {
		if _, err := e.CallUntil(now, dl, fn, nil, nil, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// TestWatchdogLooks: a stream of short calls under the same timeout, or
// under a deadline that shrinks with every call (a chain's), wakes the
// watchdog a few times, not once per call.
func TestWatchdogLooks(t *testing.T) {
	e := newExecutor(t, Options{})
	const calls = 20000
	for _, shrinking := range []bool{false, true} {
		looks0 := e.looks.Load()
		end := time.Now().Add(time.Hour)
		for i := range calls {
			now := time.Now()
			dl := now.Add(5 * time.Second)
			if shrinking {
				dl = end.Add(-time.Duration(i) * time.Millisecond)
			}
			if _, err := e.CallUntil(now, dl, code["add"], nil, nil, 1); err != nil {
				t.Fatal(err)
			}
		}
		looks := e.looks.Load() - looks0
		t.Logf("shrinking deadline %v: %d looks in %d calls", shrinking, looks, calls)
		if looks > 10 {
			t.Errorf("shrinking deadline %v: the watchdog looked %d times in %d calls", shrinking, looks, calls)
		}
	}
}

// TestThreadID: the runtime's record of the thread id is readable where
// it was when exec was written; if a Go upgrade moved it, threadID falls
// back to gettid (correct, but a system call per call): update the offsets
// in procid_linux.go.
func TestThreadID(t *testing.T) {
	newExecutor(t, Options{})
	if !procidOK {
		t.Fatalf("g.m.procid is not at %d/%d in this Go (%s): threadID makes a system call per call", runtimeGMOffset, runtimeMProcidOffset, runtime.Version())
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			if got, want := threadID(), unix.Gettid(); got != want {
				t.Errorf("threadID = %d, gettid = %d", got, want)
			}
		}()
	}
	wg.Wait()
}
