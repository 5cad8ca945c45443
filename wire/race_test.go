//go:build race

package wire

// raceEnabled: under the race detector allocations are not what the
// plain build makes (instrumentation may move values to the heap), so
// allocation counts are checked in the plain build only.
const raceEnabled = true
