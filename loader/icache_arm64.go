package loader

// syncICache makes instructions written through the data cache visible to
// instruction fetch: clean each data cache line to the point of
// unification, invalidate each instruction cache line, then synchronise.
// mprotect does not do this on arm64 Linux.
//
//go:noescape
func syncICache(addr, size uintptr)
