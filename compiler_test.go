package bcship

import (
	"testing"

	"github.com/bcship/bcship/toolchain"
)

var _ Compiler = (*toolchain.Toolchain)(nil)

// TestHostTripleMatchesToolchain: the node names its triple without
// importing toolchain; both must agree.
func TestHostTripleMatchesToolchain(t *testing.T) {
	got, gok := hostTriple()
	want, wok := toolchain.HostTriple()
	if got != want || gok != wok {
		t.Fatalf("hostTriple() = %q, %v; toolchain.HostTriple() = %q, %v", got, gok, want, wok)
	}
}
