package bundle

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrCorrupt reports bytes that do not form a bundle: bad magic, a crc
	// or zstd error, a non-canonical manifest, a missing or extra blob.
	ErrCorrupt = errors.New("bundle: corrupt")
	// ErrTruncated reports data that ends before a length it declares.
	ErrTruncated = errors.New("bundle: truncated")
	// ErrVersion reports a format version this package does not know.
	ErrVersion = errors.New("bundle: unsupported format version")
	// ErrHashMismatch reports a blob whose content does not match its sha256.
	ErrHashMismatch = errors.New("bundle: hash mismatch")
	// ErrTooLarge reports a length over a format limit or the reader's
	// decompression limit.
	ErrTooLarge = errors.New("bundle: too large")
	// ErrInvalid reports a well-formed manifest that breaks a rule of the
	// format: empty name, duplicate triple, no code, …
	ErrInvalid = errors.New("bundle: invalid manifest")
	// ErrUnsigned reports a bundle without a signature.
	ErrUnsigned = errors.New("bundle: not signed")
	// ErrUntrusted reports a signer that is not in the trust list.
	ErrUntrusted = errors.New("bundle: signer not trusted")
	// ErrBadSignature reports a signature that does not match the manifest.
	ErrBadSignature = errors.New("bundle: bad signature")
	// ErrBadKey reports a key file or key that is not an ed25519 key.
	ErrBadKey = errors.New("bundle: bad key")
)

// FormatError locates a problem in a bundle's bytes or manifest.
type FormatError struct {
	Field string // "header.version", "payload", "objects[1].triple", …
	Err   error  // wraps one of the sentinels above
}

func (e *FormatError) Error() string {
	return "bundle: " + e.Field + ": " + strings.TrimPrefix(e.Err.Error(), "bundle: ")
}

// Unwrap returns the wrapped sentinel.
func (e *FormatError) Unwrap() error { return e.Err }

// formatErr builds a *FormatError whose Err wraps sentinel and adds detail.
func formatErr(field string, sentinel error, detail string, args ...any) *FormatError {
	if detail == "" {
		return &FormatError{Field: field, Err: sentinel}
	}
	return &FormatError{Field: field, Err: fmt.Errorf("%w: "+detail, append([]any{sentinel}, args...)...)}
}
