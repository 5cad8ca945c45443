//go:build linux && (amd64 || arm64)

package exec

import (
	"context"
	"fmt"
	"math/bits"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	minStackSize = 64 << 10
	// minGuard is the smallest PROT_NONE gap below a stack. The stride is
	// the next power of two of stack+minGuard+2 pages, and all of the
	// stride not used otherwise is guard (1 MiB - 2 pages for the default
	// 1 MiB stack), so a frame has to skip more than the guard to land in a
	// neighbour stack.
	minGuard = 64 << 10

	// resendFirst and resendMax bound the interval at which a watcher
	// repeats the deadline signal while the call has not returned (the
	// first one can arrive before the thread is on the native stack, and is
	// then dropped).
	resendFirst = 500 * time.Microsecond
	resendMax   = 20 * time.Millisecond
	// timerRepeat is the period of the deadline timer after it first
	// fires, for the same reason.
	timerRepeat = time.Millisecond
	// preciseWithin: a deadline closer than this gets a kernel timer aimed
	// at the thread (three system calls per call, ≈4 µs on a VM); a later
	// one relies on the context's own Go timer, which may fire a
	// millisecond or two late — noise against a deadline that far away,
	// and a node sets seconds-long deadlines on every invocation.
	preciseWithin = 50 * time.Millisecond
)

// Executor runs native functions on a bounded pool of native stacks. It is
// safe for concurrent use; each Call uses one stack for its duration.
//
// Each stack has a stride of 1<<shift bytes of the reservation:
//
//	[0, guard)                    PROT_NONE: catches overflow
//	[guard, guard+StackSize)      the stack; SP starts at its top
//	[.., stride-page)             one PROT_NONE page: catches writes above the stack
//	[stride-page, stride)         the slot page; the slot is its last slotSize bytes
//
// so neither an overflow downwards nor a stray write upwards from the
// top frame can reach the slot, which the way back to Go depends on.
type Executor struct {
	opts      Options
	mem       []byte         // the reservation of all stacks (PROT_NONE until committed)
	base      unsafe.Pointer // &mem[0]
	shift     uint           // stride = 1 << shift
	stackSize uintptr
	guard     uintptr // size of the guard below each stack
	page      uintptr
	reg       int // index in regions
	pid       int // for tgkill; getpid is a system call every time

	// Free stacks: a lock-free LIFO (Treiber stack) of stack indices.
	// head = tag<<32 | (index+1), 0 meaning empty; next[i] = index+1 of the
	// entry below i. The tag, bumped by every push and pop, defeats ABA.
	head    atomic.Uint64
	next    []atomic.Uint32
	waiters atomic.Int32  // goroutines waiting for a free stack
	wake    chan struct{} // a stack was released while someone waited

	closed atomic.Bool
	done   chan struct{} // closed by Close

	// The watchdog (watchdog_linux.go): runs[i] is the call on stack i as
	// it sees it; wakeAt is the monotonic time of its next look (never:
	// none planned), kick wakes it early.
	runs         []run
	wakeAt       atomic.Int64
	kick         chan struct{}
	kickLeft     atomic.Int64 // time left to the deadline of the call that kicked
	active       atomic.Bool  // calls were published since the last look
	looks        atomic.Uint64
	cancelled    atomic.Bool // Options.Context is done
	stopCancel   func() bool // unregisters cancelAll from Options.Context
	watchdogDone chan struct{}

	mu     sync.Mutex // guards nalloc and commits
	nalloc int        // committed stacks, indices [0, nalloc)
}

// New reserves the address space for opts.MaxStacks native stacks and, the
// first time it is called in the process, installs the signal handlers.
func New(opts Options) (*Executor, error) {
	if opts.StackSize == 0 {
		opts.StackSize = DefaultStackSize
	}
	if opts.StackSize < 0 || opts.StackSize > maxStackSize {
		return nil, fmt.Errorf("%w: StackSize %d", ErrInvalid, opts.StackSize)
	}
	if opts.MaxStacks == 0 {
		opts.MaxStacks = DefaultMaxStacks
	}
	if opts.MaxStacks < 0 || opts.MaxStacks > MaxStacksLimit {
		return nil, fmt.Errorf("%w: MaxStacks %d (limit %d)", ErrInvalid, opts.MaxStacks, MaxStacksLimit)
	}
	pg := uintptr(os.Getpagesize())
	ss := max(uintptr(opts.StackSize), minStackSize)
	ss = (ss + pg - 1) &^ (pg - 1)
	opts.StackSize = int(ss)
	shift := uint(bits.Len(uint(ss + minGuard + 2*pg - 1)))

	if err := install(); err != nil {
		return nil, err
	}
	mem, err := unix.Mmap(-1, 0, opts.MaxStacks<<shift, unix.PROT_NONE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil, fmt.Errorf("exec: reserving %d native stacks: %w", opts.MaxStacks, err)
	}
	e := &Executor{
		pid:       unix.Getpid(),
		opts:      opts,
		mem:       mem,
		base:      unsafe.Pointer(&mem[0]),
		shift:     shift,
		stackSize: ss,
		guard:     uintptr(1)<<shift - ss - 2*pg,
		page:      pg,
		next:      make([]atomic.Uint32, opts.MaxStacks),
		wake:      make(chan struct{}, opts.MaxStacks),
		done:      make(chan struct{}),

		runs:         make([]run, opts.MaxStacks),
		kick:         make(chan struct{}, 1),
		watchdogDone: make(chan struct{}),
	}
	e.wakeAt.Store(never)
	e.reg, err = registerRegion(uintptr(e.base), shift)
	if err != nil {
		_ = unix.Munmap(mem)
		return nil, err
	}
	go e.watchdog()
	if opts.Context != nil {
		e.stopCancel = context.AfterFunc(opts.Context, e.cancelAll)
	}
	return e, nil
}

// slotOf returns the control block of stack i.
func (e *Executor) slotOf(i int) *slot {
	return (*slot)(unsafe.Add(e.base, (uintptr(i)+1)<<e.shift-slotSize))
}

// stackTop returns the initial SP of stack i (16-byte aligned).
func (e *Executor) stackTop(i int) uintptr {
	return uintptr(e.base) + uintptr(i)<<e.shift + e.guard + e.stackSize
}

// Call runs the C-ABI function int64_t fn(void *cctx, const void *arg,
// uint64_t argLen) on a pooled native stack and returns its result.
//
// The errors are a *Fault (matching ErrFault) when the native code raised
// SIGSEGV, SIGBUS, SIGILL, SIGFPE or SIGTRAP (stack overflow included), an
// *AbortError (matching ErrDeadline and ctx.Err()) when ctx was done before
// or while it ran, ErrClosed after Close and ErrInvalid for a nil fn. The
// Executor stays usable after any of them.
//
// fn, cctx and arg are not checked beyond fn != 0. cctx and arg are
// unsafe.Pointers, not uintptrs, so that Go memory they point to is kept
// alive and cannot move while native code uses it: they are converted to
// addresses only at the nosplit call into the trampoline, and a goroutine
// in syscall state never has its stack moved.
func (e *Executor) Call(ctx context.Context, fn uintptr, cctx, arg unsafe.Pointer, argLen uint64) (int64, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	return e.call(&bound{ctx: ctx}, fn, cctx, arg, 0, 0, argLen)
}

// CallUntil is Call bounded by an absolute deadline instead of a context,
// for callers that run many short calls under the same long timeout. now is
// the caller's current reading of the clock (CallUntil reads none itself);
// both must carry monotonic readings (time.Now does), and a zero deadline
// means none. The call is aborted once the clock passes deadline, with an
// *AbortError matching ErrDeadline and context.DeadlineExceeded, or when
// Options.Context is done (matching its error).
//
// A deadline within 50 ms of now gets a kernel timer aimed at the thread,
// as with Call. A later one is left to the Executor's watchdog goroutine,
// which may abort a millisecond or two late: the call only publishes itself
// to it, which costs no timer, no allocation and no clock read.
func (e *Executor) CallUntil(now, deadline time.Time, fn uintptr, cctx, arg unsafe.Pointer, argLen uint64) (int64, error) {
	return e.call(&bound{now: now, deadline: deadline}, fn, cctx, arg, 0, 0, argLen)
}

// CallAddr is Call for a context and argument given as plain addresses:
// memory outside the Go heap (mmap'd regions, another image's data) or
// values a kernel treats as integers. Never pass the address of a Go
// object here: nothing would keep it alive or in place.
func (e *Executor) CallAddr(ctx context.Context, fn, cctx, arg uintptr, argLen uint64) (int64, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	return e.call(&bound{ctx: ctx}, fn, nil, nil, cctx, arg, argLen)
}

// bound is what limits one call: ctx (Call), or a deadline with the
// caller's clock reading (CallUntil; ctx nil). Options.Context limits
// every call besides.
type bound struct {
	ctx           context.Context
	now, deadline time.Time
}

// call implements Call, CallAddr and CallUntil. The native arguments are
// pcctx+cctx and parg+arg: the pointers become addresses only at the
// nosplit call into the trampoline.
func (e *Executor) call(b *bound, fn uintptr, pcctx, parg unsafe.Pointer, cctx, arg uintptr, argLen uint64) (int64, error) {
	if e == nil {
		return 0, ErrClosed
	}
	if fn == 0 {
		return 0, fmt.Errorf("%w: nil function", ErrInvalid)
	}
	var done <-chan struct{}
	if b.ctx != nil {
		done = b.ctx.Done()
	}
	if done != nil {
		select {
		case <-done:
			return 0, &AbortError{Cause: ctxErr(b.ctx)}
		default:
		}
	}
	// A deadline: how far (CallUntil), and when on the watchdog's clock.
	var left time.Duration
	dl := int64(never)
	if !b.deadline.IsZero() {
		if left = b.deadline.Sub(b.now); left <= 0 {
			return 0, &AbortError{Cause: context.DeadlineExceeded}
		}
		dl = b.deadline.Sub(epoch).Nanoseconds()
	}
	if e.cancelled.Load() {
		return 0, &AbortError{Cause: e.cancelCause()}
	}
	i := e.pop()
	if i < 0 {
		ctx := b.ctx
		if ctx == nil {
			ctx = context.Background()
		}
		var err error
		if i, err = e.acquireSlow(ctx); err != nil {
			return 0, err
		}
	}
	if e.closed.Load() {
		e.release(i)
		return 0, ErrClosed
	}
	s := e.slotOf(i)
	s.status = statusNone
	s.token = s.token&^(1<<tokenIDShift-1) | uint64(uint32(s.token)+1)

	runtime.LockOSThread()
	if deadlineMaybeBlocked && (done != nil || dl != never || e.opts.Context != nil) {
		unblockDeadlineSignal()
	}
	var w *watcher
	if done != nil {
		w = arm(b.ctx, e.pid, s.token)
	}
	var timer int32
	timed, watched := false, false
	if dl != never || e.opts.Context != nil {
		tid := threadID()
		if dl != never && left < preciseWithin {
			timer, timed = startTimer(tid, s.token, left, timerRepeat)
		}
		if !timed || e.opts.Context != nil {
			wdl := dl
			if timed {
				wdl = never // the timer has the deadline; watch for Options.Context only
			}
			if watched = e.watch(i, tid, s.token, wdl, left); !watched {
				if timed {
					stopTimer(timer)
				}
				if w != nil {
					w.disarm()
				}
				runtime.UnlockOSThread()
				e.release(i)
				return 0, &AbortError{Cause: e.cancelCause()}
			}
		}
	}
	r := callNative(fn, uintptr(pcctx)+cctx, uintptr(parg)+arg, uintptr(argLen), uintptr(unsafe.Pointer(s)), e.stackTop(i))
	runtime.KeepAlive(pcctx)
	runtime.KeepAlive(parg)
	if watched {
		e.unwatch(i)
	}
	if timed {
		stopTimer(timer)
	}
	if w != nil {
		w.disarm()
	}
	runtime.UnlockOSThread()

	if s.status == statusNone {
		e.release(i)
		return r, nil
	}
	// Copy the record out of the slot before the stack goes back to the
	// pool, then build the error (Symbolize is the caller's code).
	rec := *s
	lo := uintptr(e.base) + uintptr(i)<<e.shift
	e.release(i)
	if rec.status == statusAborted {
		var cause error
		switch {
		case w != nil && b.ctx.Err() != nil:
			cause = ctxErr(b.ctx)
		case e.cancelled.Load():
			cause = e.cancelCause()
		case w != nil:
			cause = ctxErr(b.ctx)
		default:
			cause = context.DeadlineExceeded
		}
		a := &AbortError{Cause: cause, Started: true, PC: rec.pc}
		a.Symbol, a.Offset = e.symbolize(a.PC)
		return 0, a
	}
	f := &Fault{
		Signal:        unix.Signal(rec.signal),
		Code:          int32(rec.code),
		PC:            rec.pc,
		Addr:          rec.addr,
		StackOverflow: rec.addr >= lo && rec.addr < lo+e.guard,
	}
	f.Symbol, f.Offset = e.symbolize(f.PC)
	return 0, f
}

func (e *Executor) symbolize(pc uintptr) (string, uintptr) {
	if sym := e.opts.Symbolize; sym != nil {
		if name, off, ok := sym(pc); ok {
			return name, off
		}
	}
	return "", 0
}

// ctxErr is the cause of an abort. The deadline timer can beat the
// context's own timer, so a context past its deadline that does not know
// it yet counts as context.DeadlineExceeded.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return context.Canceled
}

// watcher aborts one call when its context is done. At the context's
// deadline a POSIX timer signals the thread running the call (precisely,
// without the Go scheduler); and whenever the context is done (cancellation
// included) context.AfterFunc runs fire on its own goroutine, which signals
// the thread until the call returns. Whichever signal lands first unwinds
// the call; the handler drops the others (the slot's status is already
// set, the thread has left the native stack, or a later call there has
// another token).
type watcher struct {
	pid, tid int
	token    uint64
	stop     func() bool
	finished chan struct{}
	timer    int32
	timed    bool
}

// arm must be called on the locked thread that will run the call.
func arm(ctx context.Context, pid int, token uint64) *watcher {
	w := &watcher{
		pid:      pid,
		tid:      threadID(),
		token:    token,
		finished: make(chan struct{}),
	}
	if dl, ok := ctx.Deadline(); ok {
		if d := time.Until(dl); d < preciseWithin {
			w.timer, w.timed = startTimer(w.tid, token, d, timerRepeat)
		}
	}
	w.stop = context.AfterFunc(ctx, w.fire)
	return w
}

func (w *watcher) fire() {
	t := time.NewTimer(resendFirst)
	defer t.Stop()
	for d := resendFirst; ; d = min(2*d, resendMax) {
		sendAbort(w.pid, w.tid, w.token)
		t.Reset(d)
		select {
		case <-w.finished:
			return
		case <-t.C:
		}
	}
}

// disarm is called once the call has returned. A signal the watcher still
// sends carries a token no running call has, and is dropped by the handler.
func (w *watcher) disarm() {
	if w.timed {
		stopTimer(w.timer)
	}
	w.stop()
	close(w.finished)
}

// pop takes a free committed stack, or returns -1.
func (e *Executor) pop() int {
	for {
		h := e.head.Load()
		i := uint32(h)
		if i == 0 {
			return -1
		}
		n := e.next[i-1].Load()
		if e.head.CompareAndSwap(h, (h>>32+1)<<32|uint64(n)) {
			return int(i - 1)
		}
	}
}

// release returns stack i to the free list and wakes a waiter, if any.
func (e *Executor) release(i int) {
	for {
		h := e.head.Load()
		e.next[i].Store(uint32(h))
		if e.head.CompareAndSwap(h, (h>>32+1)<<32|uint64(i+1)) {
			break
		}
	}
	if e.waiters.Load() > 0 {
		select {
		case e.wake <- struct{}{}:
		default:
		}
	}
}

// acquireSlow commits a new stack if the pool is below MaxStacks, or waits
// for one to be released.
func (e *Executor) acquireSlow(ctx context.Context) (int, error) {
	e.mu.Lock()
	if e.closed.Load() {
		e.mu.Unlock()
		return -1, ErrClosed
	}
	if e.nalloc < len(e.next) {
		i, err := e.commit()
		e.mu.Unlock()
		return i, err
	}
	e.mu.Unlock()

	// Waiters first announce themselves, then retry: a release either
	// happens before the retry (which then finds the stack) or sees the
	// waiter and sends a wake token.
	e.waiters.Add(1)
	defer e.waiters.Add(-1)
	for {
		if i := e.pop(); i >= 0 {
			return i, nil
		}
		select {
		case <-e.wake:
		case <-e.done:
			return -1, ErrClosed
		case <-ctx.Done():
			return -1, &AbortError{Cause: ctxErr(ctx)}
		}
	}
}

// commit makes stack nalloc usable. e.mu must be held.
func (e *Executor) commit() (int, error) {
	i := e.nalloc
	lo := uintptr(i)<<e.shift + e.guard
	hi := lo + e.stackSize
	top := uintptr(i+1) << e.shift
	for _, r := range [][2]uintptr{{lo, hi}, {top - e.page, top}} {
		if err := unix.Mprotect(e.mem[r[0]:r[1]], unix.PROT_READ|unix.PROT_WRITE); err != nil {
			return -1, fmt.Errorf("exec: committing native stack: %w", err)
		}
	}
	s := e.slotOf(i)
	*s = slot{token: tokenMagic<<tokenMagicShift | uint64(e.reg<<12|i)<<tokenIDShift}
	e.nalloc++
	setRegionEnd(e.reg, uintptr(e.base)+uintptr(e.nalloc)<<e.shift)
	return i, nil
}

// Close waits for the calls in flight to return, then unmaps every stack.
// Calls after Close return ErrClosed. Close is idempotent.
func (e *Executor) Close() error {
	if e == nil {
		return nil
	}
	e.mu.Lock()
	if e.closed.Load() {
		e.mu.Unlock()
		return nil
	}
	e.closed.Store(true)
	close(e.done)
	n := e.nalloc
	e.mu.Unlock()
	if e.stopCancel != nil {
		e.stopCancel()
	}

	// Collect every committed stack: once all are in hand, nothing runs on
	// them. Poll as well as wait, since waking Calls may consume wake
	// tokens meant for us on their way out.
	e.waiters.Add(1)
	t := time.NewTimer(time.Millisecond)
	for got := 0; got < n; {
		if e.pop() >= 0 {
			got++
			continue
		}
		t.Reset(time.Millisecond)
		select {
		case <-e.wake:
		case <-t.C:
		}
	}
	t.Stop()
	e.waiters.Add(-1)
	<-e.watchdogDone

	unregisterRegion(e.reg)
	if err := unix.Munmap(e.mem); err != nil {
		return fmt.Errorf("exec: unmapping native stacks: %w", err)
	}
	return nil
}
