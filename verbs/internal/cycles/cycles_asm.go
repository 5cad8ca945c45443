//go:build amd64 || arm64

package cycles

// Now reads the cycle counter: RDTSC on amd64, CNTVCT_EL0 on arm64. Like
// perftest's get_cycles it does not serialize the pipeline.
func Now() uint64
