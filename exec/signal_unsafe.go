//go:build linux && (amd64 || arm64)

package exec

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Process-wide state. The assembly signal handler runs on whatever thread
// takes a signal, at any moment, without a usable g: it cannot lock,
// allocate or look anything up through Go data structures, so what it reads
// must sit at fixed addresses. That is why these are package variables:
//
//   - regions: one entry per open Executor, the address range of its native
//     stacks, scanned by the handler to decide whether a signal interrupted
//     native code (and which slot to use). Written by New/Close with atomic
//     stores under regionsMu; read by the handler.
//   - oldHandlers: the handler each signal had before ours, to forward to.
//     Written once, before our handler is installed for that signal.
//   - installOnce/installErr: the one-time installation.
var (
	regions     [maxRegions]region
	regionsMu   sync.Mutex
	oldHandlers [numSignals + 1]uintptr

	installOnce sync.Once
	installErr  error
)

// deadlineMaybeBlocked is set when the process started with deadlineSignal
// blocked. The Go runtime gives every thread it makes the mask the process
// started with (only signals it must receive are unblocked), so otherwise
// no thread of ours blocks it and calls skip unblockDeadlineSignal, a
// system call. Written once by install, before any call.
var deadlineMaybeBlocked bool

// install installs sigHandler once per process.
func install() error {
	installOnce.Do(func() {
		var old uint64
		_, _, e := unix.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_BLOCK, 0, uintptr(unsafe.Pointer(&old)), 8, 0, 0)
		deadlineMaybeBlocked = e != 0 || old&(1<<(deadlineSignal-1)) != 0
		checkProcid()
		installErr = installHandlers()
	})
	return installErr
}

func rtSigaction(sig int, act, old *sigactiont) unix.Errno {
	_, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig),
		uintptr(unsafe.Pointer(act)), uintptr(unsafe.Pointer(old)), 8, 0, 0)
	return e
}

// installHandlers puts sigHandler in front of the current handler of every
// fault signal and of deadlineSignal (and, on arm64, of every signal that
// has a handler: see forwardAllSignals). It keeps the previous action's
// flags, mask and sa_restorer and adds SA_SIGINFO|SA_ONSTACK, so the handler
// runs on the thread's sigaltstack (the Go runtime gives every M one), which
// is what makes a native stack overflow survivable.
func installHandlers() error {
	h := sigHandlerAddr()
	restorer := sigReturnAddr()
	for sig := 1; sig <= numSignals; sig++ {
		required := faultSignalMask&(1<<sig) != 0 || sig == deadlineSignal
		if sig == sigKILL || sig == sigSTOP || !required && !forwardAllSignals {
			continue
		}
		var old sigactiont
		if e := rtSigaction(sig, nil, &old); e != 0 {
			if required {
				return fmt.Errorf("exec: rt_sigaction(%d): %w", sig, e)
			}
			continue
		}
		if old.handler == h {
			continue
		}
		act := old
		act.handler = h
		act.flags |= saSigInfo | saOnStack
		if old.handler <= 1 { // SIG_DFL, SIG_IGN
			switch {
			case !required:
				continue
			case sig != deadlineSignal:
				// Without the runtime's handler behind ours, a fault in Go
				// code would have nowhere to go.
				return fmt.Errorf("%w: signal %d has no handler to chain to", ErrNotSupported, sig)
			}
			// deadlineSignal with no handler: ours alone, dropping what
			// is not ours (oldHandlers stays 0).
			act.flags = saSigInfo | saOnStack | saRestart
			act.mask = ^uint64(0)
		} else {
			atomic.StoreUintptr(&oldHandlers[sig], old.handler)
		}
		if act.flags&saRestorer == 0 && restorer != 0 {
			act.flags |= saRestorer
			act.restorer = restorer
		}
		if e := rtSigaction(sig, &act, nil); e != 0 {
			if required {
				return fmt.Errorf("exec: rt_sigaction(%d): %w", sig, e)
			}
		}
	}
	return nil
}

// registerRegion claims a free regions entry for stacks starting at base
// with stride 1<<shift. No stack is committed yet (end == base).
func registerRegion(base uintptr, shift uint) (int, error) {
	regionsMu.Lock()
	defer regionsMu.Unlock()
	for i := range regions {
		r := &regions[i]
		if atomic.LoadUintptr(&r.base) == 0 {
			atomic.StoreUintptr(&r.shift, uintptr(shift))
			atomic.StoreUintptr(&r.stride, uintptr(1)<<shift)
			atomic.StoreUintptr(&r.end, base)
			atomic.StoreUintptr(&r.base, base)
			return i, nil
		}
	}
	return -1, fmt.Errorf("%w (limit %d)", ErrTooMany, maxRegions)
}

// setRegionEnd publishes a new end of the committed stacks of entry i.
func setRegionEnd(i int, end uintptr) {
	atomic.StoreUintptr(&regions[i].end, end)
}

// unregisterRegion frees entry i. No call may be running on its stacks.
func unregisterRegion(i int) {
	regionsMu.Lock()
	defer regionsMu.Unlock()
	atomic.StoreUintptr(&regions[i].base, 0)
	atomic.StoreUintptr(&regions[i].end, 0)
}

// sendAbort sends deadlineSignal carrying token to thread tid of process
// pid. rt_tgsigqueueinfo (rather than tgkill) is what lets the signal carry
// the token; a process may send it to itself with si_code SI_QUEUE.
// Errors (ESRCH: the thread is gone) need no handling: the token makes a
// lost or late signal harmless, and the watcher resends.
func sendAbort(pid, tid int, token uint64) {
	info := siginfo{signo: deadlineSignal, code: siQueue, pid: int32(pid), value: token}
	_, _, _ = unix.RawSyscall6(unix.SYS_RT_TGSIGQUEUEINFO, uintptr(pid), uintptr(tid),
		deadlineSignal, uintptr(unsafe.Pointer(&info)), 0, 0)
}

// unblockDeadlineSignal makes sure the calling thread can take
// deadlineSignal. The Go runtime leaves a signal blocked on its threads if
// the process started with it blocked (only _SigNotify signals are
// "blockable"); the call is on a locked thread, so fixing its mask suffices.
// Calls need it only when deadlineMaybeBlocked.
func unblockDeadlineSignal() {
	set := uint64(1) << (deadlineSignal - 1)
	_, _, _ = unix.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_UNBLOCK,
		uintptr(unsafe.Pointer(&set)), 0, 8, 0, 0)
}

// startTimer creates a POSIX timer that sends deadlineSignal carrying token
// to thread tid after d, and again every repeat until stopTimer (the first
// signal can arrive before the thread is on the native stack, and is then
// dropped). The kernel delivers it on time whatever the Go scheduler is
// doing, which a Go timer cannot promise while the P that owns it is in a
// syscall and the other Ps sleep in a millisecond-granular epoll_wait.
func startTimer(tid int, token uint64, d, repeat time.Duration) (id int32, ok bool) {
	sev := sigevent{value: token, signo: deadlineSignal, notify: sigevThreadID, tid: int32(tid)}
	if _, _, e := unix.RawSyscall(unix.SYS_TIMER_CREATE, unix.CLOCK_MONOTONIC,
		uintptr(unsafe.Pointer(&sev)), uintptr(unsafe.Pointer(&id))); e != 0 {
		return 0, false
	}
	its := unix.ItimerSpec{
		Interval: unix.NsecToTimespec(int64(repeat)),
		Value:    unix.NsecToTimespec(int64(max(d, 1))), // 0 would disarm
	}
	if _, _, e := unix.RawSyscall6(unix.SYS_TIMER_SETTIME, uintptr(id), 0,
		uintptr(unsafe.Pointer(&its)), 0, 0, 0); e != 0 {
		stopTimer(id)
		return 0, false
	}
	return id, true
}

// stopTimer deletes a timer of startTimer. A signal it already queued is
// still delivered, and dropped by the handler (its token is stale).
func stopTimer(id int32) {
	_, _, _ = unix.RawSyscall(unix.SYS_TIMER_DELETE, uintptr(id), 0, 0)
}
