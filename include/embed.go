// Package include embeds bcship.h, the host ABI header kernels include, so
// that a bcship binary can compile kernels from any directory without a
// checkout of the repository.
package include

import (
	"bytes"
	_ "embed"
)

//go:embed bcship.h
var header []byte

// HeaderName is the file name kernels #include.
const HeaderName = "bcship.h"

// Header returns a copy of bcship.h.
func Header() []byte { return bytes.Clone(header) }
