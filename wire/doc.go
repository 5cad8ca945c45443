// Package wire is bcship's versioned binary framing and its message types.
// It parses and encodes; it does no I/O policy.
package wire
