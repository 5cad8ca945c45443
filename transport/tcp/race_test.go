//go:build race

package tcp

// raceEnabled: the race detector multiplies the CPU time of every loop,
// so the tests that weigh CPU time skip under it (they run in the plain
// build).
const raceEnabled = true
