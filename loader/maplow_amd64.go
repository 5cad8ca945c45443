package loader

import "golang.org/x/sys/unix"

// lowMapFlag maps in the first 2 GiB, where non-PIC small-model x86_64
// code (absolute R_X86_64_32/32S addresses) must live.
const lowMapFlag = unix.MAP_32BIT
