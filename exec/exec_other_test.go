//go:build !(linux && (amd64 || arm64))

package exec

import (
	"context"
	"errors"
	"testing"
)

func TestNotSupported(t *testing.T) {
	e, err := New(Options{})
	if e != nil || !errors.Is(err, ErrNotSupported) {
		t.Fatalf("New: %v, %v; want ErrNotSupported", e, err)
	}
	if _, err := e.CallAddr(context.Background(), 1, 0, 0, 0); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("Call: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
}
