//go:build linux && (amd64 || arm64)

package exec

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// The kernels are hand-assembled machine code mapped by TestMain (see
// kernels_<arch>_test.go); in bcship they come from the loader.
func ExampleExecutor_Call() {
	e, err := New(Options{Symbolize: symbolize})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer e.Close()

	r, err := e.Call(context.Background(), code["add"], nil, nil, 42) // returns arg + argLen
	fmt.Println(r, err)

	_, err = e.Call(context.Background(), code["null"], nil, nil, 0)
	var f *Fault
	fmt.Println(errors.As(err, &f), f.Signal, f.Addr, f.Symbol)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err = e.Call(ctx, code["spin"], nil, nil, 0)
	fmt.Println(errors.Is(err, ErrDeadline), errors.Is(err, context.DeadlineExceeded))
	// Output:
	// 42 <nil>
	// true segmentation fault 0 null
	// true true
}
