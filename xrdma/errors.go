package xrdma

import (
	"errors"
	"fmt"
)

var (
	// ErrParam reports an invalid size, count or configuration.
	ErrParam = errors.New("xrdma: invalid parameter")
	// ErrMismatch reports a run whose answer differs from the one computed
	// in Go; the error is a *MismatchError.
	ErrMismatch = errors.New("xrdma: wrong answer")
	// ErrBadReply reports a reply a kernel should not have sent: wrong
	// length, or a negative status.
	ErrBadReply = errors.New("xrdma: bad reply")
)

// MismatchError is a run whose answer is not the reference answer.
type MismatchError struct {
	Op   string // "chase", "lookup", "gather"
	Mode Mode
	Got  string
	Want string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("xrdma: %s (%v) answered %s, want %s", e.Op, e.Mode, e.Got, e.Want)
}

// Is makes a *MismatchError match ErrMismatch.
func (e *MismatchError) Is(target error) bool { return target == ErrMismatch }
