package verbs_test

import "golang.org/x/sys/unix"

var (
	errnoEINVAL        = unix.EINVAL
	errnoEBUSY         = unix.EBUSY
	errnoEADDRNOTAVAIL = unix.EADDRNOTAVAIL
)
