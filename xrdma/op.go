package xrdma

import (
	"context"
	"fmt"

	bc "github.com/bcship/bcship"
	"github.com/bcship/bcship/bundle"
)

// Mode is one way to run an operation.
type Mode int

// The three modes, and Cold: shipped code that no node has cached yet.
const (
	GET Mode = iota
	AM
	Shipped
	Cold
)

// Modes are the warm modes every operation runs in.
var Modes = []Mode{GET, AM, Shipped}

func (m Mode) String() string {
	switch m {
	case GET:
		return "get"
	case AM:
		return "am"
	case Shipped:
		return "shipped"
	case Cold:
		return "shipped-cold"
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// Op is an operation prepared over a cluster at one size, with a fixed set
// of queries and their answers computed in Go.
type Op interface {
	// Name is the operation's name: "chase", "lookup" or "gather".
	Name() string
	// Run runs query i (modulo the set) in mode m (GET, AM or Shipped) and
	// checks the answer.
	Run(ctx context.Context, m Mode, i int) error
	// RunCold runs query i shipped with code, a variant of the op's code
	// (Code.Cold) that need not be cached anywhere, and checks the answer.
	RunCold(ctx context.Context, code *bundle.Bundle, i int) error
}

// caller sends an operation's kernel to a node in AM or shipped mode.
type caller struct {
	origin *bc.Node
	code   *Code
}

func newCaller(origin *bc.Node, code *Code) (caller, error) {
	// InvokeHash needs the code added; AM handlers are installed by the
	// caller of the constructors (Code.InstallAM).
	if _, err := origin.AddCode(code.Bundle); err != nil {
		return caller{}, err
	}
	return caller{origin: origin, code: code}, nil
}

// call runs the kernel on node with arg. cold, when not nil, is the code
// to ship instead of the op's cached code (mode Shipped).
func (c caller) call(ctx context.Context, m Mode, cold *bundle.Bundle, node uint32, arg []byte) (*bc.Result, error) {
	var res *bc.Result
	var err error
	switch {
	case m == AM:
		res, err = c.origin.CallAM(ctx, node, c.code.Name, arg)
	case m == Shipped && cold != nil:
		res, err = c.origin.Invoke(ctx, node, cold, c.code.Name, arg)
	case m == Shipped:
		res, err = c.origin.InvokeHash(ctx, node, c.code.Hash, c.code.Name, arg)
	default:
		return nil, fmt.Errorf("%w: mode %v does not call kernels", ErrParam, m)
	}
	if err != nil {
		return nil, err
	}
	if res.Status < 0 {
		return nil, fmt.Errorf("%w: %s on node %d returned status %d", ErrBadReply, c.code.Name, res.Node, res.Status)
	}
	return res, nil
}
