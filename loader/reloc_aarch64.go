package loader

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
)

// Relocation arithmetic for aarch64, after the AAELF64 tables. Page(x) is
// x with its low 12 bits cleared; GDAT(S+A) is the GOT entry holding S+A.

func usesGOTA64(t elf.R_AARCH64) bool {
	switch t {
	case elf.R_AARCH64_ADR_GOT_PAGE, elf.R_AARCH64_LD64_GOT_LO12_NC, elf.R_AARCH64_GOT_LD_PREL19:
		return true
	}
	return false
}

// debug/elf does not name these.
const (
	rAArch64GOTREL64 = elf.R_AARCH64(307)
	rAArch64GOTREL32 = elf.R_AARCH64(308)
)

func page(x uint64) uint64 { return x &^ 0xfff }

func (l *linker) applyA64(sec *section, r rela) error {
	t := elf.R_AARCH64(r.typ)
	S := l.addrs[r.sym]
	A := r.addend
	GOT := l.base + l.lay.gotOff
	le := binary.LittleEndian

	// insn reads the instruction a relocation patches and returns a
	// function that writes it back with new bits.
	insn := func() (uint32, uint64, func(uint32), error) {
		b, P, err := l.field(sec, r, 4)
		if err != nil {
			return 0, 0, nil, err
		}
		return le.Uint32(b), P, func(v uint32) { le.PutUint32(b, v) }, nil
	}
	data := func(width uint64, v uint64) error {
		b, _, err := l.field(sec, r, width)
		if err != nil {
			return err
		}
		switch width {
		case 8:
			le.PutUint64(b, v)
		case 4:
			le.PutUint32(b, uint32(v))
		case 2:
			le.PutUint16(b, uint16(v))
		}
		return nil
	}
	place := func() (uint64, error) {
		_, p, err := l.field(sec, r, 4)
		return p, err
	}
	// adr patches an ADR/ADRP immediate (immlo in bits 29-30, immhi in 5-23).
	adr := func(v int64) error {
		if !fitsSigned(v, 21) {
			return fmt.Errorf("%w: ADR/ADRP immediate %#x", ErrOutOfRange, v)
		}
		i, _, put, err := insn()
		if err != nil {
			return err
		}
		i &^= 3<<29 | 0x7ffff<<5
		i |= uint32(v&3)<<29 | uint32((v>>2)&0x7ffff)<<5
		put(i)
		return nil
	}
	// lo12 patches the 12-bit unsigned offset of ADD/LDR/STR (bits 10-21),
	// scaled by the access size.
	lo12 := func(v uint64, shift uint) error {
		v &= 0xfff
		if v&(1<<shift-1) != 0 {
			return fmt.Errorf("%w: offset %#x not aligned to %d bytes", ErrOutOfRange, v, 1<<shift)
		}
		i, _, put, err := insn()
		if err != nil {
			return err
		}
		i &^= 0xfff << 10
		i |= uint32(v>>shift) << 10
		put(i)
		return nil
	}
	// branch patches a PC-relative word offset of bits width at bit lsb.
	branch := func(v int64, bits, lsb uint) error {
		if v&3 != 0 {
			return fmt.Errorf("%w: branch target %#x not 4-byte aligned", ErrOutOfRange, v)
		}
		v >>= 2
		if !fitsSigned(v, bits) {
			return fmt.Errorf("%w: branch offset %#x does not fit %d bits", ErrOutOfRange, v<<2, bits+2)
		}
		i, _, put, err := insn()
		if err != nil {
			return err
		}
		mask := uint32(1)<<bits - 1
		i &^= mask << lsb
		i |= (uint32(v) & mask) << lsb
		put(i)
		return nil
	}
	// movw patches the 16-bit immediate of MOVZ/MOVK (bits 5-20) with the
	// chunk of v at shift; check, when set, refuses bits above the chunk.
	movw := func(v uint64, shift uint, check bool) error {
		if check && shift < 48 && v>>(shift+16) != 0 {
			return fmt.Errorf("%w: %#x does not fit MOVW group at bit %d", ErrOutOfRange, v, shift)
		}
		i, _, put, err := insn()
		if err != nil {
			return err
		}
		i &^= 0xffff << 5
		i |= uint32((v>>shift)&0xffff) << 5
		put(i)
		return nil
	}
	gdat := func() (uint64, error) { return l.got(r.sym, A) }

	switch t {
	case elf.R_AARCH64_NONE, 256: // 256 is the alternative R_AARCH64_NONE (withdrawn R_ARM_NONE)
		return nil
	case elf.R_AARCH64_ABS64:
		return data(8, S+uint64(A))
	case elf.R_AARCH64_ABS32:
		v := int64(S + uint64(A))
		if v < -(1<<31) || v >= 1<<32 {
			return fmt.Errorf("%w: %#x does not fit 32 bits", ErrOutOfRange, v)
		}
		return data(4, uint64(v))
	case elf.R_AARCH64_ABS16:
		v := int64(S + uint64(A))
		if v < -(1<<15) || v >= 1<<16 {
			return fmt.Errorf("%w: %#x does not fit 16 bits", ErrOutOfRange, v)
		}
		return data(2, uint64(v))
	case elf.R_AARCH64_PREL64, elf.R_AARCH64_PREL32, elf.R_AARCH64_PREL16:
		w := map[elf.R_AARCH64]uint64{elf.R_AARCH64_PREL64: 8, elf.R_AARCH64_PREL32: 4, elf.R_AARCH64_PREL16: 2}[t]
		_, P, err := l.field(sec, r, w)
		if err != nil {
			return err
		}
		v := int64(S + uint64(A) - P)
		if w < 8 && (v < -(1<<(w*8-1)) || v >= 1<<(w*8)) {
			return fmt.Errorf("%w: %#x does not fit %d bits", ErrOutOfRange, v, w*8)
		}
		return data(w, uint64(v))
	case elf.R_AARCH64_ADR_PREL_PG_HI21, elf.R_AARCH64_ADR_PREL_PG_HI21_NC:
		P, err := place()
		if err != nil {
			return err
		}
		v := int64(page(S+uint64(A))-page(P)) >> 12
		if t == elf.R_AARCH64_ADR_PREL_PG_HI21_NC {
			v = v << 43 >> 43
		}
		return adr(v)
	case elf.R_AARCH64_ADR_PREL_LO21:
		P, err := place()
		if err != nil {
			return err
		}
		return adr(int64(S + uint64(A) - P))
	case elf.R_AARCH64_ADD_ABS_LO12_NC, elf.R_AARCH64_LDST8_ABS_LO12_NC:
		return lo12(S+uint64(A), 0)
	case elf.R_AARCH64_LDST16_ABS_LO12_NC:
		return lo12(S+uint64(A), 1)
	case elf.R_AARCH64_LDST32_ABS_LO12_NC:
		return lo12(S+uint64(A), 2)
	case elf.R_AARCH64_LDST64_ABS_LO12_NC:
		return lo12(S+uint64(A), 3)
	case elf.R_AARCH64_LDST128_ABS_LO12_NC:
		return lo12(S+uint64(A), 4)
	case elf.R_AARCH64_CALL26, elf.R_AARCH64_JUMP26:
		P, err := place()
		if err != nil {
			return err
		}
		v := int64(S + uint64(A) - P)
		if !fitsSigned(v, 28) && l.o.syms[r.sym].shndx == elf.SHN_UNDEF {
			// A call to a host symbol beyond ±128 MiB: go through a veneer.
			st, err := l.stub(r.sym)
			if err != nil {
				return err
			}
			v = int64(st + uint64(A) - P)
		}
		return branch(v, 26, 0)
	case elf.R_AARCH64_CONDBR19, elf.R_AARCH64_LD_PREL_LO19:
		P, err := place()
		if err != nil {
			return err
		}
		return branch(int64(S+uint64(A)-P), 19, 5)
	case elf.R_AARCH64_TSTBR14:
		P, err := place()
		if err != nil {
			return err
		}
		return branch(int64(S+uint64(A)-P), 14, 5)
	case elf.R_AARCH64_MOVW_UABS_G0, elf.R_AARCH64_MOVW_UABS_G0_NC:
		return movw(S+uint64(A), 0, t == elf.R_AARCH64_MOVW_UABS_G0)
	case elf.R_AARCH64_MOVW_UABS_G1, elf.R_AARCH64_MOVW_UABS_G1_NC:
		return movw(S+uint64(A), 16, t == elf.R_AARCH64_MOVW_UABS_G1)
	case elf.R_AARCH64_MOVW_UABS_G2, elf.R_AARCH64_MOVW_UABS_G2_NC:
		return movw(S+uint64(A), 32, t == elf.R_AARCH64_MOVW_UABS_G2)
	case elf.R_AARCH64_MOVW_UABS_G3:
		return movw(S+uint64(A), 48, true)
	case elf.R_AARCH64_ADR_GOT_PAGE:
		P, err := place()
		if err != nil {
			return err
		}
		e, err := gdat()
		if err != nil {
			return err
		}
		return adr(int64(page(e)-page(P)) >> 12)
	case elf.R_AARCH64_LD64_GOT_LO12_NC:
		e, err := gdat()
		if err != nil {
			return err
		}
		return lo12(e, 3)
	case elf.R_AARCH64_GOT_LD_PREL19:
		P, err := place()
		if err != nil {
			return err
		}
		e, err := gdat()
		if err != nil {
			return err
		}
		return branch(int64(e-P), 19, 5)
	case rAArch64GOTREL64:
		return data(8, S+uint64(A)-GOT)
	case rAArch64GOTREL32:
		v := int64(S + uint64(A) - GOT)
		if !fitsSigned(v, 32) {
			return fmt.Errorf("%w: %#x does not fit 32 bits", ErrOutOfRange, v)
		}
		return data(4, uint64(v))
	}
	if (t >= 512 && t < 600) || (t >= elf.R_AARCH64_TLS_DTPMOD64 && t <= elf.R_AARCH64_TLSDESC) {
		// The static and dynamic TLS relocation ranges.
		return ErrTLS
	}
	return ErrUnknownRelocation
}
