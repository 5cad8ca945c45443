// g.m.procid for linux/amd64; the offsets are Go constants from
// procid_linux.go, taken from go_asm.h by name.

#include "textflag.h"
#include "go_asm.h"

// func procid() uint64
TEXT ·procid(SB), NOSPLIT|NOFRAME, $0-8
	MOVQ	(TLS), AX // g
	MOVQ	const_runtimeGMOffset(AX), AX
	MOVQ	const_runtimeMProcidOffset(AX), AX
	MOVQ	AX, ret+0(FP)
	RET
