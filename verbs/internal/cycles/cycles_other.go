//go:build !amd64 && !arm64

package cycles

import "time"

var epoch = time.Now()

// Now falls back to the monotonic clock in nanoseconds where there is no
// cycle counter reader.
func Now() uint64 { return uint64(time.Since(epoch)) }
