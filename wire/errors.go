package wire

import (
	"errors"
	"strings"
)

var (
	// ErrBadMagic reports a frame that does not start with Magic: the peer
	// does not speak bcship, or the stream lost its framing.
	ErrBadMagic = errors.New("wire: bad magic")
	// ErrVersion reports a frame of a protocol version this package does not
	// speak.
	ErrVersion = errors.New("wire: unsupported protocol version")
	// ErrTooLarge reports a frame, string, list or byte field over its limit.
	ErrTooLarge = errors.New("wire: too large")
	// ErrTruncated reports input that ends inside a header or a field.
	ErrTruncated = errors.New("wire: truncated")
	// ErrUnknownType reports a message type this version does not define.
	ErrUnknownType = errors.New("wire: unknown message type")
	// ErrMalformed reports a payload with bytes left over after its last
	// field; rejecting them keeps every encoding canonical.
	ErrMalformed = errors.New("wire: malformed")
)

// DecodeError says which message and field a payload failed to decode at.
// Err is one of the sentinels, so errors.Is(err, ErrTruncated) works.
type DecodeError struct {
	Type  Type
	Field string // "" when the error is not about one field
	Err   error
}

func (e *DecodeError) Error() string { return fieldError("decode", e.Type, e.Field, e.Err) }

func (e *DecodeError) Unwrap() error { return e.Err }

// EncodeError says which field of a message cannot be encoded, because it is
// over a limit the decoder would enforce (Err is ErrTooLarge).
type EncodeError struct {
	Type  Type
	Field string
	Err   error
}

func (e *EncodeError) Error() string { return fieldError("encode", e.Type, e.Field, e.Err) }

func (e *EncodeError) Unwrap() error { return e.Err }

func fieldError(op string, t Type, field string, err error) string {
	var b strings.Builder
	b.WriteString("wire: ")
	b.WriteString(op)
	b.WriteByte(' ')
	b.WriteString(t.String())
	if field != "" {
		b.WriteByte('.')
		b.WriteString(field)
	}
	b.WriteString(": ")
	b.WriteString(strings.TrimPrefix(err.Error(), "wire: "))
	return b.String()
}
