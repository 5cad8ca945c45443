package verbs_test

import "golang.org/x/sys/unix"

var (
	errnoEINVAL        = unix.EINVAL
	errnoEBUSY         = unix.EBUSY
	errnoEINTR         = unix.EINTR
	errnoEADDRNOTAVAIL = unix.EADDRNOTAVAIL
)
