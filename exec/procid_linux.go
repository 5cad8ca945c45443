//go:build linux && (amd64 || arm64)

package exec

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// Offsets into the Go runtime's g and m (runtime/runtime2.go, Go 1.26),
// used by procid. g.m sits behind the stack bounds, the two stack guards,
// _panic and _defer ("offset known to arm liblink"); m.procid behind g0,
// morebuf (a gobuf of six words) and divmod, an offset the runtime does not
// promise ("for debuggers, but offset not hard-coded"). So checkProcid
// compares procid with gettid once, and threadID uses the system call when
// they disagree; TestThreadID fails when that happens, so that a Go upgrade
// which moves the field is noticed.
const (
	runtimeGMOffset      = 48
	runtimeMProcidOffset = 64
)

// procid returns g.m.procid of the calling goroutine: the kernel thread id
// the runtime recorded for its M (procid_linux_*.s). Only meaningful when
// procidOK.
func procid() uint64

// procidOK is set by checkProcid, once, before any call.
var procidOK bool

// checkProcid sets procidOK when procid agrees with gettid.
func checkProcid() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	procidOK = procid() == uint64(unix.Gettid())
}

// threadID returns the id of the calling thread, which must be locked to
// the goroutine: without a system call when the runtime's record can be
// read (a gettid per call costs ~0.2 µs here, ~0.7 µs under qemu TCG).
func threadID() int {
	if procidOK {
		return int(procid())
	}
	return unix.Gettid()
}
