//go:build !arm64

package loader

// syncICache is a no-op where instruction fetch is coherent with data
// writes (x86_64).
func syncICache(addr, size uintptr) {}
