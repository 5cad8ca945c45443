//go:build !(linux && (amd64 || arm64))

package exec

import (
	"context"
	"time"
	"unsafe"
)

// Executor is not available on this platform: New returns ErrNotSupported.
type Executor struct{}

// New returns ErrNotSupported: native execution exists for linux/amd64 and
// linux/arm64 only.
func New(opts Options) (*Executor, error) { return nil, ErrNotSupported }

// Call returns ErrNotSupported.
func (e *Executor) Call(ctx context.Context, fn uintptr, cctx, arg unsafe.Pointer, argLen uint64) (int64, error) {
	return 0, ErrNotSupported
}

// CallAddr returns ErrNotSupported.
func (e *Executor) CallAddr(ctx context.Context, fn, cctx, arg uintptr, argLen uint64) (int64, error) {
	return 0, ErrNotSupported
}

// CallUntil returns ErrNotSupported.
func (e *Executor) CallUntil(now, deadline time.Time, fn uintptr, cctx, arg unsafe.Pointer, argLen uint64) (int64, error) {
	return 0, ErrNotSupported
}

// Close does nothing.
func (e *Executor) Close() error { return nil }
