// g.m.procid for linux/arm64; the offsets are Go constants from
// procid_linux.go, taken from go_asm.h by name.

#include "textflag.h"
#include "go_asm.h"

// func procid() uint64
TEXT ·procid(SB), NOSPLIT|NOFRAME, $0-8
	MOVD	const_runtimeGMOffset(g), R0
	MOVD	const_runtimeMProcidOffset(R0), R0
	MOVD	R0, ret+0(FP)
	RET
