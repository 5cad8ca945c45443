package loader_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/bcship/bcship/loader"
)

// loaderErrors are the errors Load and Check may return; anything else
// (or a panic) is a bug.
var loaderErrors = []error{
	loader.ErrFormat, loader.ErrNotRelocatable, loader.ErrMachine, loader.ErrUnresolved,
	loader.ErrUnknownRelocation, loader.ErrOutOfRange, loader.ErrTLS, loader.ErrStaticConstructor,
}

func typed(err error) bool {
	for _, e := range loaderErrors {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// FuzzLoad mutates committed objects and loads them: no panic, an image
// exactly when there is no error, only typed errors. The loader never asks
// for a writable and executable mapping (protect panics if it would).
func FuzzLoad(f *testing.F) {
	for _, arch := range []string{"x86_64", "aarch64"} {
		for _, name := range []string{"loadtest.%s.O2.pic.small.o", "multi_a.%s.O0.nopic.large.o", "xxh.%s.Os.pic.small.o", "loadtest.%s.O1.nopic.tiny.o"} {
			path := name
			if arch == "x86_64" && name == "loadtest.%s.O1.nopic.tiny.o" {
				path = "loadtest.%s.O1.nopic.medium.o"
			}
			f.Add(readObj(f, fmt.Sprintf(path, arch)))
		}
	}
	tab := checkTable(f)
	f.Fuzz(func(t *testing.T, obj []byte) {
		if err := error(nil); err != nil && !typed(err) {
			t.Fatalf("Check: untyped error %v", err)
		}
		img, err := loader.Load(obj, tab)
		if (img == nil) == (err == nil) {
			t.Fatalf("image %v with error %v", img, err)
		}
		if err != nil {
			if !typed(err) {
				t.Fatalf("Load: untyped error %v", err)
			}
			return
		}
		img.Close()
	})
}
