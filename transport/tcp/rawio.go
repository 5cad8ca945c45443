package tcp

import (
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// Bare system calls on the hot paths.
//
// The runtime keeps a connection's socket non-blocking, so a read or write
// of it never sleeps in the kernel: it moves bytes or answers EAGAIN. Going
// through net.Conn (or RawConn) for one costs the fd's read or write lock,
// the poller's bookkeeping and entersyscall/exitsyscall, which hand the
// processor back and forth around the call. A write's loopback path takes
// ~6 µs here, and the round trip through net.Conn.Write measured 0.45 µs
// more per write than the same write(2) bare (a cached invoke round trip
// has two). So, as gVisor's rawfile does for its non-blocking descriptors,
// a busy-polling reader reads the socket with a bare read(2) and every
// writer first tries a bare write(2); only a write the socket cannot take
// at once goes on through net.Conn, which waits in the netpoller.
//
// A bare system call on a descriptor number is only safe while the
// descriptor stays open: closed under it, the number could be reused for
// another file. rawFD counts the calls in flight and the connection's close
// waits for them (they do not block, so the wait is short) before it
// closes the socket.

// rawFD is a socket's descriptor for bare system calls.
type rawFD struct {
	fd int
	// state counts the calls in flight, with rawClosing set once the
	// descriptor may be used no more.
	state atomic.Int64
}

const rawClosing = 1 << 40

// newRawFD returns nc's descriptor for bare calls, or nil when nc has none.
func newRawFD(nc net.Conn) *rawFD {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	r := &rawFD{fd: -1}
	if err := rc.Control(func(fd uintptr) { r.fd = int(fd) }); err != nil || r.fd < 0 {
		return nil
	}
	return r
}

func (r *rawFD) acquire() bool {
	if r.state.Add(1) >= rawClosing {
		r.state.Add(-1)
		return false
	}
	return true
}

func (r *rawFD) release() { r.state.Add(-1) }

// shut ends the bare calls: later ones fail with net.ErrClosed, and shut
// returns once those in flight are done. Call it before closing the socket.
func (r *rawFD) shut() {
	for {
		s := r.state.Load()
		if s >= rawClosing {
			break
		}
		if r.state.CompareAndSwap(s, s+rawClosing) {
			break
		}
	}
	for r.state.Load() != rawClosing {
		runtime.Gosched()
	}
}

// read is one non-blocking read(2): n > 0, or 0 with syscall.EAGAIN when
// the socket is empty, or 0 and nil at the stream's end.
func (r *rawFD) read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return r.call(syscall.SYS_READ, p, "read")
}

// write is one non-blocking write(2) of as much of p as the socket takes.
func (r *rawFD) write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return r.call(syscall.SYS_WRITE, p, "write")
}

func (r *rawFD) call(trap uintptr, p []byte, name string) (int, error) {
	if !r.acquire() {
		return 0, net.ErrClosed
	}
	defer r.release()
	for {
		n, _, e := syscall.RawSyscall(trap, uintptr(r.fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch e {
		case 0:
			return int(n), nil
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return 0, syscall.EAGAIN
		default:
			return 0, os.NewSyscallError(name, e)
		}
	}
}
