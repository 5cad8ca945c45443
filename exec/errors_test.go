package exec

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"
)

func TestErrorStrings(t *testing.T) {
	f := &Fault{Signal: syscall.Signal(11), PC: 0x1234, Addr: 8, Symbol: "k", Offset: 4, StackOverflow: true}
	if s := f.Error(); s != "exec: native code fault: native stack overflow (SIGSEGV) at pc 0x1234 (k+0x4), address 0x8" {
		t.Errorf("Fault.Error() = %q", s)
	}
	if !errors.Is(fmt.Errorf("wrapped: %w", f), ErrFault) || errors.Is(f, ErrDeadline) {
		t.Error("Fault matching")
	}
	a := &AbortError{Cause: context.DeadlineExceeded, Started: true, PC: 0x10, Symbol: "spin"}
	if s := a.Error(); s != "exec: native call aborted at pc 0x10 (spin+0x0): context deadline exceeded" {
		t.Errorf("AbortError.Error() = %q", s)
	}
	if !errors.Is(a, ErrDeadline) || !errors.Is(a, context.DeadlineExceeded) || errors.Is(a, ErrFault) {
		t.Error("AbortError matching")
	}
	c := &AbortError{Cause: context.Canceled}
	if !errors.Is(c, ErrDeadline) || !errors.Is(c, context.Canceled) || c.Error() != "exec: native call not started: context canceled" {
		t.Errorf("not-started AbortError: %v", c)
	}
}
