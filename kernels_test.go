package bcship

import (
	"context"
	"sync"
	"testing"

	"github.com/bcship/bcship/bundle"
	"github.com/bcship/bcship/toolchain"
)

// testKernels compiles testdata/nodetest.c once per test binary.
type testKernels struct {
	once sync.Once
	b    *bundle.Bundle
	err  error
}

func (k *testKernels) get(t testing.TB) *bundle.Bundle {
	t.Helper()
	k.once.Do(func() {
		tc, err := toolchain.Find(context.Background())
		if err != nil {
			k.err = err
			return
		}
		triple, _ := toolchain.HostTriple()
		k.b, k.err = tc.Build(context.Background(), toolchain.BuildOptions{
			Sources: []string{"testdata/nodetest.c"}, Triples: []string{triple}, NoBitcode: true,
		})
	})
	if k.err != nil {
		t.Skipf("SKIP (loud): the test kernels in testdata/nodetest.c need clang: %v", k.err)
	}
	return k.b
}

// nodetest is shared by the tests of this package.
var nodetest testKernels
