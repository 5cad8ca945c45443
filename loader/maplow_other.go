//go:build !amd64

package loader

// lowMapFlag is 0 where no object needs the low 2 GiB (only x86_64
// objects do, and they only load on amd64).
const lowMapFlag = 0
