//go:build linux && (amd64 || arm64)

package exec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Test fixtures: every kernel of kernels_<arch>_test.go on its own RX
// page, plus a read-only page and a non-executable page.
var (
	code   = map[string]uintptr{}
	roPage uintptr // PROT_READ
	nxPage uintptr // PROT_READ|PROT_WRITE, never executable
)

func TestMain(m *testing.M) {
	pg := os.Getpagesize()
	for name, k := range kernels {
		mem, err := unix.Mmap(-1, 0, pg, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			panic(err)
		}
		copy(mem, k)
		if err := unix.Mprotect(mem, unix.PROT_READ|unix.PROT_EXEC); err != nil {
			panic(err)
		}
		code[name] = uintptr(unsafe.Pointer(&mem[0]))
	}
	ro, err := unix.Mmap(-1, 0, pg, unix.PROT_READ, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		panic(err)
	}
	roPage = uintptr(unsafe.Pointer(&ro[0]))
	nx, err := unix.Mmap(-1, 0, pg, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		panic(err)
	}
	nxPage = uintptr(unsafe.Pointer(&nx[0]))
	os.Exit(m.Run())
}

// symbolize names the test kernels.
func symbolize(pc uintptr) (string, uintptr, bool) {
	for name, addr := range code {
		if pc >= addr && pc < addr+uintptr(len(kernels[name])) {
			return name, pc - addr, true
		}
	}
	return "", 0, false
}

func newExecutor(tb testing.TB, opts Options) *Executor {
	tb.Helper()
	if opts.Symbolize == nil {
		opts.Symbolize = symbolize
	}
	e, err := New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := e.Close(); err != nil {
			tb.Error(err)
		}
	})
	return e
}

// flagPage returns a zeroed RW page outside the Go heap: kernels poll it.
func flagPage(tb testing.TB) (*[2]atomic.Uint64, uintptr) {
	tb.Helper()
	mem, err := unix.Mmap(-1, 0, os.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = unix.Munmap(mem) })
	p := unsafe.Pointer(&mem[0])
	return (*[2]atomic.Uint64)(p), uintptr(p)
}

// goodCalls checks n ordinary calls.
func goodCalls(tb testing.TB, e *Executor, n int) {
	tb.Helper()
	for i := range n {
		arg := uintptr(0x1000 + i)
		r, err := callU(e, context.Background(), code["add"], 0, arg, uint64(i))
		if err != nil || r != int64(arg)+int64(i) {
			tb.Fatalf("good call %d: got %d, %v; want %d", i, r, err, int64(arg)+int64(i))
		}
	}
}

// slow reports whether this is an arm64 binary, which here means running
// under qemu-user: timing bounds are looser there.
const slow = runtime.GOARCH == "arm64"

func TestCall(t *testing.T) {
	e := newExecutor(t, Options{})
	r, err := callU(e, context.Background(), code["empty"], 0xfeed, 0, 0)
	if err != nil || r != 0xfeed {
		t.Fatalf("empty: got %#x, %v; want 0xfeed (cctx)", r, err)
	}
	r, err = callU(e, context.Background(), code["add"], 0, 40, 2)
	if err != nil || r != 42 {
		t.Fatalf("add: got %d, %v; want 42", r, err)
	}
	// A context with a deadline that does not expire.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err = callU(e, ctx, code["add"], 0, 1<<40, 1)
	if err != nil || r != 1<<40+1 {
		t.Fatalf("add with deadline: got %d, %v", r, err)
	}
	//lint:ignore SA1012 nil context is bad input Call must survive
	r, err = callU(e, nil, code["add"], 0, 1, 1) //nolint:staticcheck
	if err != nil || r != 2 {
		t.Fatalf("nil ctx: got %d, %v", r, err)
	}
	if _, err := callU(e, context.Background(), 0, 0, 0, 0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("nil fn: %v, want ErrInvalid", err)
	}
	goodCalls(t, e, 1000)
}

func TestStackUse512KiB(t *testing.T) {
	e := newExecutor(t, Options{})
	for i := range 10 {
		r, err := callU(e, context.Background(), code["stack"], 0, 7, uint64(i))
		if err != nil || r != 7+int64(i) {
			t.Fatalf("got %d, %v", r, err)
		}
	}
	// Too much for a 256 KiB stack: the guard catches it.
	small := newExecutor(t, Options{StackSize: 256 << 10})
	_, err := callU(small, context.Background(), code["stack"], 0, 7, 0)
	var f *Fault
	if !errors.As(err, &f) || !f.StackOverflow {
		t.Fatalf("512 KiB on a 256 KiB stack: %v, want a stack overflow Fault", err)
	}
	goodCalls(t, small, 1000)
}

func TestFaults(t *testing.T) {
	e := newExecutor(t, Options{})
	type tc struct {
		kernel   string
		cctx     uintptr
		sig      syscall.Signal
		code     int32 // 0: not checked
		addr     *uintptr
		pc       uintptr // 0: code[kernel]+faultOffset[kernel]
		overflow bool
	}
	zero := uintptr(0)
	cases := []tc{
		{kernel: "null", sig: unix.SIGSEGV, code: 1 /* SEGV_MAPERR */, addr: &zero},
		{kernel: "store", cctx: roPage, sig: unix.SIGSEGV, code: 2 /* SEGV_ACCERR */, addr: &roPage},
		{kernel: "up", sig: unix.SIGSEGV, code: 2 /* SEGV_ACCERR: the PROT_NONE page between stack and slot */},
		{kernel: "jump", cctx: nxPage, sig: unix.SIGSEGV, addr: &nxPage, pc: nxPage},
		{kernel: "ud", sig: unix.SIGILL},
		{kernel: "brk", sig: unix.SIGTRAP},
		{kernel: "rec", sig: unix.SIGSEGV, overflow: true, pc: ^uintptr(0)},
	}
	if runtime.GOARCH == "amd64" {
		// int3 reports the address after it.
		faultOffset["brk"] = 1
		cases = append(cases, tc{kernel: "div", sig: unix.SIGFPE, code: 1 /* FPE_INTDIV */})
	}
	for _, c := range cases {
		t.Run(c.kernel, func(t *testing.T) {
			r, err := callU(e, context.Background(), code[c.kernel], c.cctx, 0, 0)
			var f *Fault
			if !errors.As(err, &f) || !errors.Is(err, ErrFault) {
				t.Fatalf("got %d, %v; want a *Fault", r, err)
			}
			t.Logf("%v", err)
			if f.Signal != c.sig {
				t.Errorf("signal %v, want %v", f.Signal, c.sig)
			}
			if c.code != 0 && f.Code != c.code {
				t.Errorf("si_code %d, want %d", f.Code, c.code)
			}
			if c.addr != nil && f.Addr != *c.addr {
				t.Errorf("addr %#x, want %#x", f.Addr, *c.addr)
			}
			switch want := c.pc; want {
			case ^uintptr(0): // recursion: anywhere in the kernel
				if f.Symbol != c.kernel {
					t.Errorf("symbol %q, want %q", f.Symbol, c.kernel)
				}
			case 0:
				want = code[c.kernel] + faultOffset[c.kernel]
				if f.PC != want || f.Symbol != c.kernel || f.Offset != faultOffset[c.kernel] {
					t.Errorf("pc %#x (%s+%#x), want %#x (%s+%#x)", f.PC, f.Symbol, f.Offset, want, c.kernel, faultOffset[c.kernel])
				}
			default:
				if f.PC != want {
					t.Errorf("pc %#x, want %#x", f.PC, want)
				}
			}
			if f.StackOverflow != c.overflow {
				t.Errorf("StackOverflow %v, want %v", f.StackOverflow, c.overflow)
			}
			goodCalls(t, e, 1000)
		})
	}
}

func TestDeadline(t *testing.T) {
	e := newExecutor(t, Options{})
	const timeout = 100 * time.Millisecond
	// The abort itself takes tens of microseconds (BenchmarkAbort); the
	// slack absorbs scheduling noise on a loaded machine, where even a
	// time.Sleep(1ms) can overshoot by tens of milliseconds.
	slack := 250 * time.Millisecond
	if slow {
		slack = time.Second
	}
	for range 3 {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		r, err := callU(e, ctx, code["spin"], 0, 0, 0)
		el := time.Since(start)
		dl, _ := ctx.Deadline()
		late := time.Since(dl)
		cancel()
		if !errors.Is(err, ErrDeadline) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %d, %v; want ErrDeadline and context.DeadlineExceeded", r, err)
		}
		var a *AbortError
		if !errors.As(err, &a) || !a.Started || a.Symbol != "spin" {
			t.Fatalf("%#v: want a started abort in spin", err)
		}
		t.Logf("%v after %v (%v after the deadline)", err, el, late)
		if el < timeout || el > timeout+slack {
			t.Fatalf("returned after %v, want %v..%v", el, timeout, timeout+slack)
		}
		goodCalls(t, e, 1000)
	}

	// Cancellation mid-call.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := callU(e, ctx, code["spin"], 0, 0, 0)
	if !errors.Is(err, ErrDeadline) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancel: %v; want ErrDeadline and context.Canceled", err)
	}
	// Already done: not started.
	_, err = callU(e, ctx, code["add"], 0, 0, 0)
	var a *AbortError
	if !errors.As(err, &a) || a.Started {
		t.Fatalf("done ctx: %v; want an AbortError that did not start", err)
	}
	goodCalls(t, e, 1000)
}

// TestGCWhileKernelSpins: a kernel spinning for 2 s on one goroutine must
// not hold up a GC (nor other goroutines) elsewhere.
func TestGCWhileKernelSpins(t *testing.T) {
	e := newExecutor(t, Options{})
	flag, addr := flagPage(t)
	res := make(chan error, 1)
	start := time.Now()
	go func() {
		r, err := callU(e, context.Background(), code["wait"], addr, 0, 0)
		if err == nil && r != 7 {
			err = fmt.Errorf("result %d, want 7", r)
		}
		res <- err
	}()
	// A goroutine that must keep ticking meanwhile.
	var ticks atomic.Int64
	stopTick := make(chan struct{})
	go func() {
		for {
			select {
			case <-stopTick:
				return
			case <-time.After(time.Millisecond):
				ticks.Add(1)
			}
		}
	}()
	time.Sleep(100 * time.Millisecond)

	var keep [][]byte
	allocStart := time.Now()
	for range 64 << 10 {
		keep = append(keep, make([]byte, 1024))
	}
	gcStart := time.Now()
	runtime.GC()
	gcDur := time.Since(gcStart)
	allocDur := gcStart.Sub(allocStart)
	runtime.KeepAlive(keep)
	select {
	case err := <-res:
		t.Fatalf("kernel returned early: %v", err)
	default:
	}
	bound := 100 * time.Millisecond
	if slow {
		bound = time.Second
	}
	t.Logf("64 MiB allocated in %v, runtime.GC() took %v while the kernel spins", allocDur, gcDur)
	if gcDur > bound || allocDur > 10*bound {
		t.Errorf("GC took %v (bound %v), allocation %v", gcDur, bound, allocDur)
	}
	time.Sleep(2*time.Second - time.Since(start))
	flag[0].Store(7)
	if err := <-res; err != nil {
		t.Fatal(err)
	}
	close(stopTick)
	if n := ticks.Load(); n < 200 {
		t.Errorf("ticker ticked %d times in 2 s, want >= 200", n)
	}
	t.Logf("kernel ran %v; ticker ticked %d times", time.Since(start), ticks.Load())
}

// TestConcurrent: 8 goroutines x 10,000 calls with faults mixed in.
func TestConcurrent(t *testing.T) {
	e := newExecutor(t, Options{})
	const goroutines, calls = 8, 10000
	faultKernels := []string{"null", "ud", "brk", "jump"}
	var wg sync.WaitGroup
	var faults atomic.Int64
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for i := range calls {
				if i%101 == 50 {
					k := faultKernels[(i/101+g)%len(faultKernels)]
					_, err := callU(e, context.Background(), code[k], nxPage, 0, 0)
					var f *Fault
					if !errors.As(err, &f) {
						errs <- fmt.Errorf("goroutine %d call %d (%s): %v, want a Fault", g, i, k, err)
						return
					}
					faults.Add(1)
					continue
				}
				arg := uintptr(g)<<32 | uintptr(i)
				r, err := callU(e, context.Background(), code["add"], 0, arg, uint64(g))
				if err != nil || r != int64(arg)+int64(g) {
					errs <- fmt.Errorf("goroutine %d call %d: %d, %v", g, i, r, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if want := int64(goroutines * ((calls + 50) / 101)); faults.Load() != want {
		t.Errorf("%d faults, want %d", faults.Load(), want)
	}
}

// TestGoNilPanic: Go's own faults still reach the runtime once our handler
// is in front of it.
func TestGoNilPanic(t *testing.T) {
	newExecutor(t, Options{})
	var cur sigactiont
	if e := rtSigaction(int(unix.SIGSEGV), nil, &cur); e != 0 || cur.handler != sigHandlerAddr() {
		t.Fatalf("SIGSEGV handler %#x (%v), want ours %#x", cur.handler, e, sigHandlerAddr())
	}
	for range 3 {
		func() {
			defer func() {
				r := recover()
				if re, ok := r.(runtime.Error); !ok || !bytes.Contains([]byte(re.Error()), []byte("nil pointer")) {
					t.Fatalf("recovered %v, want a nil pointer runtime.Error", r)
				}
			}()
			var p *[1 << 10]int
			p[3]++
		}()
	}
}

// TestSignalsDuringNativeCode: signals the Go runtime handles (preemption,
// profiling, notifications) land on a thread running native code that has
// clobbered the Go g register; they must be forwarded with a valid g
// (arm64) and must not disturb the kernel.
func TestSignalsDuringNativeCode(t *testing.T) {
	e := newExecutor(t, Options{})
	flag, addr := flagPage(t)
	winch := make(chan os.Signal, 16)
	signal.Notify(winch, unix.SIGWINCH)
	defer signal.Stop(winch)

	var prof bytes.Buffer
	if err := pprof.StartCPUProfile(&prof); err != nil {
		t.Fatal(err)
	}
	res := make(chan error, 1)
	go func() {
		r, err := callU(e, context.Background(), code["gtid"], addr, 0, 0)
		if err == nil && r != 9 {
			err = fmt.Errorf("result %d, want 9", r)
		}
		res <- err
	}()
	for flag[1].Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	tid := int(flag[1].Load())
	pid := unix.Getpid()
	for i := range 50 {
		for _, s := range []unix.Signal{unix.SIGURG, unix.SIGWINCH, unix.SIGPROF} {
			if err := unix.Tgkill(pid, tid, s); err != nil {
				t.Fatal(err)
			}
		}
		// A deadline signal of ours with a token no call has: dropped.
		sendAbort(pid, tid, tokenMagic<<tokenMagicShift|0xFFFFF<<tokenIDShift|uint64(i))
		time.Sleep(2 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // let the profiler's SIGPROF hit the kernel too
	select {
	case err := <-res:
		t.Fatalf("kernel returned early: %v", err)
	default:
	}
	flag[0].Store(9)
	if err := <-res; err != nil {
		t.Fatal(err)
	}
	pprof.StopCPUProfile()
	select {
	case <-winch:
	case <-time.After(5 * time.Second):
		t.Error("SIGWINCH sent during native code never reached os/signal")
	}
	goodCalls(t, e, 1000)
}

// TestLateDeadlineSignal: our deadline signal arriving when no call (or
// another call) runs is dropped, and never reaches os/signal; a foreign
// signal with the same number is forwarded to the Go runtime.
func TestLateDeadlineSignal(t *testing.T) {
	e := newExecutor(t, Options{})
	ch := make(chan os.Signal, 16)
	signal.Notify(ch, syscall.Signal(deadlineSignal))
	defer signal.Stop(ch)

	runtime.LockOSThread()
	pid, tid := unix.Getpid(), unix.Gettid()
	// Use a real token: the last call's on stack 0.
	_, _ = callU(e, context.Background(), code["add"], 0, 0, 0)
	tok := e.slotOf(0).token
	for range 10 {
		sendAbort(pid, tid, tok)
	}
	runtime.UnlockOSThread()
	goodCalls(t, e, 1000)
	select {
	case s := <-ch:
		t.Fatalf("our own deadline signal reached os/signal: %v", s)
	case <-time.After(50 * time.Millisecond):
	}
	// A foreign one (plain tgkill) is the program's.
	if err := unix.Tgkill(pid, unix.Gettid(), syscall.Signal(deadlineSignal)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("foreign deadline-numbered signal not forwarded to os/signal")
	}
}

func TestPoolBound(t *testing.T) {
	e := newExecutor(t, Options{MaxStacks: 1, StackSize: 64 << 10})
	flag, addr := flagPage(t)
	res := make(chan error, 1)
	go func() {
		_, err := callU(e, context.Background(), code["wait"], addr, 0, 0)
		res <- err
	}()
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := callU(e, ctx, code["add"], 0, 0, 0)
	var a *AbortError
	if !errors.As(err, &a) || a.Started || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting for the only stack: %v; want a not-started AbortError", err)
	}
	// A waiter gets the stack once it is released.
	got := make(chan error, 1)
	go func() {
		r, err := callU(e, context.Background(), code["add"], 0, 1, 2)
		if err == nil && r != 3 {
			err = fmt.Errorf("got %d", r)
		}
		got <- err
	}()
	time.Sleep(20 * time.Millisecond)
	flag[0].Store(1)
	if err := <-res; err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

func TestClose(t *testing.T) {
	e, err := New(Options{MaxStacks: 4})
	if err != nil {
		t.Fatal(err)
	}
	flag, addr := flagPage(t)
	res := make(chan error, 1)
	go func() {
		_, err := callU(e, context.Background(), code["wait"], addr, 0, 0)
		res <- err
	}()
	time.Sleep(50 * time.Millisecond)
	closed := make(chan error, 1)
	go func() { closed <- e.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a call was running", err)
	case <-time.After(100 * time.Millisecond):
	}
	flag[0].Store(1)
	if err := <-res; err != nil {
		t.Fatal(err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if _, err := callU(e, context.Background(), code["add"], 0, 0, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v, want ErrClosed", err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	var nilE *Executor
	if _, err := callU(nilE, context.Background(), code["add"], 0, 0, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("nil executor: %v", err)
	}
	// Executors come and go: their region entries are reused.
	for range 3 * maxRegions {
		e, err := New(Options{MaxStacks: 2})
		if err != nil {
			t.Fatal(err)
		}
		goodCalls(t, e, 10)
		_, err = callU(e, context.Background(), code["null"], 0, 0, 0)
		if !errors.Is(err, ErrFault) {
			t.Fatal(err)
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOptions(t *testing.T) {
	for _, o := range []Options{{StackSize: -1}, {MaxStacks: -1}, {MaxStacks: MaxStacksLimit + 1}, {StackSize: maxStackSize + 1}} {
		if _, err := New(o); !errors.Is(err, ErrInvalid) {
			t.Errorf("New(%+v): %v, want ErrInvalid", o, err)
		}
	}
	e := newExecutor(t, Options{StackSize: 1000})
	if e.opts.StackSize != minStackSize || e.guard < minGuard {
		t.Errorf("StackSize 1000 gave stack %d guard %d", e.opts.StackSize, e.guard)
	}
	d := newExecutor(t, Options{})
	if pg := uintptr(os.Getpagesize()); d.opts.StackSize != DefaultStackSize || d.opts.MaxStacks != DefaultMaxStacks ||
		d.guard != DefaultStackSize-2*pg {
		t.Errorf("defaults: %+v guard %d", d.opts, d.guard)
	}
}

// BenchmarkCallEmpty calls an empty kernel through the full path (syscall
// state, stack switch, call, return) and reports the ratio to a plain Go
// call and to getpid(2), both measured in the same run.
func BenchmarkCallEmpty(b *testing.B) {
	e := newExecutor(b, Options{})
	fn := code["empty"]
	ctx := context.Background()
	for b.Loop() {
		if _, err := callU(e, ctx, fn, 1, 0, 0); err != nil {
			b.Fatal(err)
		}
	}
	per := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(per/baselineNs(goEmptyLoop), "x-gocall")
	b.ReportMetric(per/baselineNs(getpidLoop), "x-getpid")
}

func goEmptyLoop(n int) {
	var s int64
	for i := 0; i < n; i++ {
		s += goEmpty(1, 0, 0)
	}
	runtime.KeepAlive(s)
}

func getpidLoop(n int) {
	for i := 0; i < n; i++ {
		syscall.Getpid()
	}
}

// baselineNs times f(n) for growing n until it runs 100 ms, and returns
// ns per iteration.
func baselineNs(f func(n int)) float64 {
	for n := 1000; ; n *= 4 {
		t0 := time.Now()
		f(n)
		if d := time.Since(t0); d > 100*time.Millisecond {
			return float64(d.Nanoseconds()) / float64(n)
		}
	}
}

func BenchmarkCallEmptyParallel(b *testing.B) {
	e := newExecutor(b, Options{})
	fn := code["empty"]
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := callU(e, context.Background(), fn, 1, 0, 0); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkCallEmptyDeadline(b *testing.B) {
	e := newExecutor(b, Options{})
	fn := code["empty"]
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	for b.Loop() {
		if _, err := callU(e, ctx, fn, 1, 0, 0); err != nil {
			b.Fatal(err)
		}
	}
}

//go:noinline
func goEmpty(cctx, arg uintptr, n uint64) int64 { return int64(cctx) }

func BenchmarkGoCall(b *testing.B) {
	var s int64
	for b.Loop() {
		s += goEmpty(1, 0, 0)
	}
	runtime.KeepAlive(s)
}

func BenchmarkGetpid(b *testing.B) {
	for b.Loop() {
		syscall.Getpid()
	}
}

func BenchmarkFault(b *testing.B) {
	e := newExecutor(b, Options{})
	fn := code["null"]
	for b.Loop() {
		if _, err := callU(e, context.Background(), fn, 0, 0, 0); err == nil {
			b.Fatal("no fault")
		}
	}
}

// BenchmarkAbort measures the time from the deadline to Call returning
// ErrDeadline for a kernel in an endless loop.
func BenchmarkAbort(b *testing.B) {
	e := newExecutor(b, Options{})
	fn := code["spin"]
	var late time.Duration
	var worst time.Duration
	for b.Loop() {
		dl := time.Now().Add(time.Millisecond)
		ctx, cancel := context.WithDeadline(context.Background(), dl)
		_, err := callU(e, ctx, fn, 0, 0, 0)
		d := time.Since(dl)
		cancel()
		if !errors.Is(err, ErrDeadline) {
			b.Fatal(err)
		}
		late += d
		worst = max(worst, d)
	}
	b.ReportMetric(float64(late.Nanoseconds())/float64(b.N), "ns-after-deadline")
	b.ReportMetric(float64(worst.Nanoseconds()), "worst-ns-after-deadline")
}

// callU calls with addresses as integers: the hand-assembled test kernels
// take plain numbers or addresses of non-Go memory, never Go pointers.
func callU(e *Executor, ctx context.Context, fn, cctx, arg uintptr, n uint64) (int64, error) {
	return e.CallAddr(ctx, fn, cctx, arg, n)
}
