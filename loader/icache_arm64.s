#include "textflag.h"

// func syncICache(addr, size uintptr)
//
// Line sizes come from CTR_EL0 (readable at EL0 on Linux): DminLine is
// bits 16-19, IminLine bits 0-3, both log2 of the line size in words.
// The system instructions are spelled as WORDs because the Go assembler
// does not know DC CVAU / IC IVAU.
TEXT ·syncICache(SB), NOSPLIT, $0-16
	MOVD addr+0(FP), R0
	MOVD size+8(FP), R1
	ADD  R0, R1, R1             // R1 = end
	WORD $0xd53b0022            // mrs x2, ctr_el0
	UBFX $16, R2, $4, R3        // DminLine
	MOVD $4, R4
	LSL  R3, R4, R3             // R3 = dcache line bytes
	AND  $15, R2, R5            // IminLine
	LSL  R5, R4, R5             // R5 = icache line bytes
	SUB  $1, R3, R6
	BIC  R6, R0, R6             // R6 = addr rounded down to a dcache line
dloop:
	WORD $0xd50b7b26            // dc cvau, x6
	ADD  R3, R6, R6
	CMP  R1, R6
	BLO  dloop
	WORD $0xd5033b9f            // dsb ish
	SUB  $1, R5, R6
	BIC  R6, R0, R6             // R6 = addr rounded down to an icache line
iloop:
	WORD $0xd50b7526            // ic ivau, x6
	ADD  R5, R6, R6
	CMP  R1, R6
	BLO  iloop
	WORD $0xd5033b9f            // dsb ish
	WORD $0xd5033fdf            // isb
	RET
