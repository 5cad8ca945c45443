//go:build race

package transporttest

// raceEnabled: the race detector multiplies the CPU time of every loop.
const raceEnabled = true
