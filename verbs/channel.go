package verbs

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bcship/bcship/internal/uverbs"
	"golang.org/x/sys/unix"
)

// CompChannel is a completion channel (ibv_comp_channel): a file on which
// the kernel queues an event each time an armed CQ bound to the channel
// (CreateCQWithChannel, CQ.ReqNotify) gets a completion. It lets a CQ's
// poller block instead of spinning or sleeping:
//
//	for {
//		if n, _ := cq.Poll(wcs); n > 0 { handle(wcs[:n]); continue }
//		// … spin a while, then:
//		cq.ReqNotify(false)
//		if n, _ := cq.Poll(wcs); n > 0 { handle(wcs[:n]); continue }
//		ch.Wait(ctx) // the event, Interrupt, ctx or Close
//	}
//
// The poll after arming catches completions that arrived before the arm,
// which raise no event; an event can therefore be left over from an arm
// whose completion was polled already, and Wait then returns a CQ with
// nothing new in it (poll, re-arm, wait again).
//
// Events need no acknowledgement (ibv_ack_cq_events). libibverbs makes
// ibv_destroy_cq wait until every event read for the CQ was acknowledged,
// so that no thread still holds the ibv_cq the event points to; here an
// event resolves to a *CQ that the garbage collector keeps alive, and a CQ
// closed meanwhile just reports ErrClosed from Poll. The kernel drops the
// events still queued for a CQ it destroys.
//
// Close the channel after its CQs (it refuses with ErrInUse before).
type CompChannel struct {
	ctx *Context
	f   *os.File
	rc  syscall.RawConn

	// waiting admits one Wait at a time; buf is that Wait's read buffer.
	waiting atomic.Bool
	buf     []byte
	// interrupted is set by Interrupt and taken by the Wait it ends.
	interrupted atomic.Bool

	mu     sync.Mutex
	cqs    map[uint64]*CQ // bound CQs by user handle
	refs   int            // bound CQs, including ones being created
	closed bool
}

// aLongTimeAgo is a read deadline that has passed: it ends a blocked read.
var aLongTimeAgo = time.Unix(1, 0)

// CreateCompChannel runs CREATE_COMP_CHANNEL. The kernel answers with a new
// file descriptor; it is made non-blocking and handed to the runtime's
// netpoller (the event file implements poll: ib_uverbs_event_poll), so a
// goroutine in Wait is parked without holding an OS thread, and read
// deadlines can end its wait.
func (c *Context) CreateCompChannel() (*CompChannel, error) {
	const op = "create_comp_channel"
	if c.isClosed() {
		return nil, misuse(op, unix.EBADF, ErrClosed)
	}
	var r uverbs.CreateCompChannelResp
	req := uverbs.CreateCompChannel{Response: uverbs.Ptr(&r)}
	if err := uverbs.Call(c.fd, uverbs.IB_USER_VERBS_CMD_CREATE_COMP_CHANNEL, &req, &r); err != nil {
		return nil, opErr(op, err)
	}
	fd := int(r.FD)
	unix.CloseOnExec(fd) // the kernel sets it already; cheap insurance
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, opErr(op, err)
	}
	f := os.NewFile(uintptr(fd), "uverbs-comp-channel")
	// os.NewFile registers a non-blocking descriptor with epoll; where that
	// fails the file is not pollable and deadlines are refused.
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		f.Close()
		return nil, &Error{Op: op, Errno: unix.EOPNOTSUPP, Err: fmt.Errorf("%w: channel not pollable: %v", ErrNotSupported, err)}
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, opErr(op, err)
	}
	ch := &CompChannel{ctx: c, f: f, rc: rc, buf: make([]byte, uverbs.SizeOf[uverbs.CompEventDesc]()), cqs: map[uint64]*CQ{}}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		f.Close()
		return nil, misuse(op, unix.EBADF, ErrClosed)
	}
	if c.chans == nil {
		c.chans = map[*CompChannel]struct{}{}
	}
	c.chans[ch] = struct{}{}
	return ch, nil
}

// Wait blocks until an armed CQ bound to the channel gets a completion, and
// returns that CQ, now disarmed. It returns early with ctx's error, with an
// *Error matching ErrInterrupted after Interrupt, and with one matching
// ErrClosed once the channel or its Context is closed. One goroutine waits
// at a time: a concurrent Wait gets an *Error matching ErrInUse.
func (ch *CompChannel) Wait(ctx context.Context) (*CQ, error) {
	const op = "get_cq_event"
	if !ch.waiting.CompareAndSwap(false, true) {
		return nil, misuse(op, unix.EBUSY, ErrInUse)
	}
	defer ch.waiting.Store(false)
	deadline, _ := ctx.Deadline()
	if ctx.Done() != nil {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// Cancellation ends the read as Interrupt does. Wait does not
		// return before the function has run, so that it cannot end a
		// later Wait's read.
		fired := make(chan struct{})
		stop := context.AfterFunc(ctx, func() {
			ch.f.SetReadDeadline(aLongTimeAgo)
			close(fired)
		})
		defer func() {
			if !stop() {
				<-fired
			}
		}()
	}
	for {
		// Set the deadline, then look for an interrupt: an Interrupt
		// that set its deadline before ours has set the flag already, one
		// that sets it after ends the read.
		if err := ch.f.SetReadDeadline(deadline); err != nil {
			return nil, ch.readErr(err)
		}
		if ch.interrupted.Swap(false) {
			return nil, misuse(op, unix.EINTR, ErrInterrupted)
		}
		if ctx.Done() != nil {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		n, err := ch.f.Read(ch.buf)
		switch {
		case err == nil && n == len(ch.buf):
			h := binary.NativeEndian.Uint64(ch.buf)
			ch.mu.Lock()
			cq := ch.cqs[h]
			ch.mu.Unlock()
			if cq == nil {
				continue // the CQ was closed after the kernel queued the event
			}
			cq.events.Add(1)
			return cq, nil
		case err == nil:
			return nil, &Error{Op: op, Errno: unix.EIO, Err: fmt.Errorf("short event read: %d bytes", n)}
		case errors.Is(err, os.ErrDeadlineExceeded):
			if ch.interrupted.Swap(false) {
				return nil, misuse(op, unix.EINTR, ErrInterrupted)
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if !deadline.IsZero() && !time.Now().Before(deadline) {
				return nil, context.DeadlineExceeded
			}
			// The late deadline of an Interrupt whose flag an earlier
			// Wait took: wait on.
		default:
			return nil, ch.readErr(err)
		}
	}
}

// readErr is a failed read or deadline: on a closed channel (os.ErrClosed
// from a read, "use of closed file" from a deadline), ErrClosed.
func (ch *CompChannel) readErr(err error) error {
	ch.mu.Lock()
	closed := ch.closed
	ch.mu.Unlock()
	if closed || errors.Is(err, os.ErrClosed) {
		return misuse("get_cq_event", unix.EBADF, ErrClosed)
	}
	return opErr("get_cq_event", err)
}

// Interrupt wakes the goroutine in Wait, which returns ErrInterrupted; if
// none is waiting, the next Wait returns at once. Safe from any goroutine,
// at any time (a poller's owner calls it to hand the poller work, or to
// stop it).
func (ch *CompChannel) Interrupt() {
	ch.interrupted.Store(true)
	ch.f.SetReadDeadline(aLongTimeAgo) // fails only once closed: nothing to wake
}

// Close closes the channel. It fails with an *Error matching ErrInUse (and
// EBUSY) while CQs are bound to it, as ibv_destroy_comp_channel does: close
// them first. A Wait in progress returns ErrClosed.
func (ch *CompChannel) Close() error {
	ch.mu.Lock()
	if ch.closed {
		ch.mu.Unlock()
		return nil
	}
	if ch.refs > 0 {
		ch.mu.Unlock()
		return misuse("destroy_comp_channel", unix.EBUSY, ErrInUse)
	}
	ch.closed = true
	ch.mu.Unlock()
	c := ch.ctx
	c.mu.Lock()
	delete(c.chans, ch)
	c.mu.Unlock()
	return opErr("destroy_comp_channel", ch.f.Close())
}

// shut closes the channel for Context.Close, CQs or not: the kernel
// destroys them with the context.
func (ch *CompChannel) shut() {
	ch.mu.Lock()
	if ch.closed {
		ch.mu.Unlock()
		return
	}
	ch.closed = true
	ch.mu.Unlock()
	ch.f.Close()
}

// acquire reserves a CQ's place on the channel before CREATE_CQ.
func (ch *CompChannel) acquire() error {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.closed {
		return misuse("create_cq", unix.EBADF, ErrClosed)
	}
	ch.refs++
	return nil
}

// bind makes the channel's events for cq resolve to it.
func (ch *CompChannel) bind(cq *CQ) {
	ch.mu.Lock()
	ch.cqs[cq.userHandle] = cq
	ch.mu.Unlock()
}

// release undoes acquire (and bind, for a non-nil cq).
func (ch *CompChannel) release(cq *CQ) {
	ch.mu.Lock()
	if cq != nil {
		delete(ch.cqs, cq.userHandle)
	}
	ch.refs--
	ch.mu.Unlock()
}
