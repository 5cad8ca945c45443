package verbs

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Sentinels that *Error values match with errors.Is.
var (
	ErrClosed       = errors.New("object is closed")
	ErrQPState      = errors.New("queue pair is in the wrong state")
	ErrOutOfBounds  = errors.New("outside the memory region")
	ErrQueueFull    = errors.New("work queue is full")
	ErrTooManySGEs  = errors.New("too many scatter/gather entries")
	ErrInlineTooBig = errors.New("inline data larger than the queue pair allows")
	ErrNoDevice     = errors.New("no such RDMA device")
	ErrNotSupported = errors.New("not supported by this device")
	ErrNoGID        = errors.New("no usable RoCE v2 GID")
	ErrNoChannel    = errors.New("completion queue has no completion channel")
	ErrInUse        = errors.New("still in use")
	ErrInterrupted  = errors.New("wait interrupted")
	ErrExists       = errors.New("an RDMA device of that name exists")
	ErrNetdev       = errors.New("network device unusable for RoCE")
	ErrPermission   = errors.New("RDMA netlink link commands need CAP_NET_ADMIN (run as root)")
	ErrNoRxeModule  = errors.New("soft-RoCE is not available: kernel module rdma_rxe (and ib_core) not loaded or not installed (modprobe rdma_rxe)")
)

// Error is a failed verbs operation: Op names the command (e.g. "reg_mr",
// "modify_qp(RTR)", "post_send"), Errno is the kernel's answer or the errno
// libibverbs would have returned for the misuse in Err.
type Error struct {
	Op    string
	Errno unix.Errno
	Err   error // a sentinel above, or nil
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("verbs: %s: %v (%v)", e.Op, e.Err, e.Errno)
	}
	return fmt.Sprintf("verbs: %s: %v", e.Op, e.Errno)
}

// Unwrap gives both the errno and the sentinel to errors.Is/As.
func (e *Error) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Errno, e.Err}
	}
	return []error{e.Errno}
}

// opErr wraps err from the kernel as an *Error for op.
func opErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var errno unix.Errno
	if errors.As(err, &errno) {
		return &Error{Op: op, Errno: errno}
	}
	return &Error{Op: op, Errno: unix.EIO, Err: err}
}

func misuse(op string, errno unix.Errno, sentinel error) error {
	return &Error{Op: op, Errno: errno, Err: sentinel}
}
