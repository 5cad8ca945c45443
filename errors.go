package bcship

import (
	"errors"
	"fmt"

	"github.com/bcship/bcship/bundle"
	"github.com/bcship/bcship/exec"
	"github.com/bcship/bcship/loader"
	"github.com/bcship/bcship/transport"
	"github.com/bcship/bcship/wire"
)

var (
	// ErrPeerDown reports a request whose node (or a node its chain may have
	// reached) died or could not be reached. Shared with package transport.
	ErrPeerDown = transport.ErrPeerDown
	// ErrUnknownPeer reports a node id with no known address.
	ErrUnknownPeer = transport.ErrUnknownPeer
	// ErrClosed reports a Node used after Close.
	ErrClosed = errors.New("bcship: node closed")
	// ErrNotStarted reports a network operation before Start.
	ErrNotStarted = errors.New("bcship: node not started")
	// ErrConfig reports an invalid Config or argument.
	ErrConfig = errors.New("bcship: invalid configuration")

	// The remaining sentinels name the typed errors a node reports with
	// ERROR (wire.ErrorCode); a *RemoteError matches the one for its code.

	ErrBadFrame     = errors.New("bcship: bad frame")
	ErrUnknownType  = errors.New("bcship: unknown message type")
	ErrUnknownCode  = errors.New("bcship: unknown code")
	ErrUntrusted    = errors.New("bcship: untrusted code")
	ErrTTLExhausted = errors.New("bcship: TTL exhausted")
	ErrFault        = errors.New("bcship: kernel fault")
	ErrDeadline     = errors.New("bcship: kernel deadline exceeded")
	ErrUnresolved   = errors.New("bcship: unresolved symbol")
	ErrTooLarge     = errors.New("bcship: too large")
	ErrNoTriple     = errors.New("bcship: no code for the node's target triple")
	ErrNoEntry      = errors.New("bcship: no such entry")
	ErrNoRegion     = errors.New("bcship: no such region")
	ErrOutOfRange   = errors.New("bcship: out of range")
	ErrNoHandler    = errors.New("bcship: no such AM handler")
	ErrInternal     = errors.New("bcship: internal error")
)

// sentinelFor maps a wire error code to its sentinel.
func sentinelFor(c wire.ErrorCode) error {
	switch c {
	case wire.CodeBadFrame:
		return ErrBadFrame
	case wire.CodeUnknownType:
		return ErrUnknownType
	case wire.CodeUnknownCode:
		return ErrUnknownCode
	case wire.CodeUntrusted:
		return ErrUntrusted
	case wire.CodeTTLExhausted:
		return ErrTTLExhausted
	case wire.CodeFault:
		return ErrFault
	case wire.CodeDeadline:
		return ErrDeadline
	case wire.CodeUnresolved:
		return ErrUnresolved
	case wire.CodePeerDown:
		return ErrPeerDown
	case wire.CodeTooLarge:
		return ErrTooLarge
	case wire.CodeNoTriple:
		return ErrNoTriple
	case wire.CodeNoEntry:
		return ErrNoEntry
	case wire.CodeNoRegion:
		return ErrNoRegion
	case wire.CodeOutOfRange:
		return ErrOutOfRange
	case wire.CodeNoHandler:
		return ErrNoHandler
	case wire.CodeInternal:
		return ErrInternal
	}
	return nil
}

// RemoteError is an ERROR a node reported: a kernel fault, an untrusted
// bundle, an exhausted TTL, … It matches the sentinel of its Code
// (errors.Is(err, ErrFault)), including ErrPeerDown for CodePeerDown.
type RemoteError struct {
	Node uint32         // node that reported it
	Code wire.ErrorCode // typed reason
	Text string         // the node's explanation
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("bcship: node %d: %v: %s", e.Node, e.Code, e.Text)
}

// Is reports whether target is the sentinel for e.Code.
func (e *RemoteError) Is(target error) bool {
	s := sentinelFor(e.Code)
	return s != nil && s == target
}

// codeOf classifies a local error for an ERROR message.
func codeOf(err error) wire.ErrorCode {
	var re *RemoteError
	switch {
	case errors.As(err, &re):
		return re.Code
	case errors.Is(err, exec.ErrFault):
		return wire.CodeFault
	case errors.Is(err, exec.ErrDeadline):
		return wire.CodeDeadline
	case errors.Is(err, loader.ErrUnresolved):
		return wire.CodeUnresolved
	case errors.Is(err, loader.ErrNoSymbol):
		return wire.CodeNoEntry
	case errors.Is(err, bundle.ErrUnsigned), errors.Is(err, bundle.ErrUntrusted), errors.Is(err, bundle.ErrBadSignature):
		return wire.CodeUntrusted
	case errors.Is(err, bundle.ErrTooLarge), errors.Is(err, wire.ErrTooLarge):
		return wire.CodeTooLarge
	case errors.Is(err, bundle.ErrCorrupt), errors.Is(err, bundle.ErrTruncated), errors.Is(err, bundle.ErrVersion),
		errors.Is(err, bundle.ErrHashMismatch), errors.Is(err, bundle.ErrInvalid):
		return wire.CodeBadFrame
	case errors.Is(err, ErrPeerDown):
		return wire.CodePeerDown
	case errors.Is(err, ErrUnknownPeer):
		return wire.CodePeerDown
	}
	for c := wire.CodeBadFrame; c < wire.CodeInternal; c++ {
		if s := sentinelFor(c); s != nil && errors.Is(err, s) {
			return c
		}
	}
	return wire.CodeInternal
}
