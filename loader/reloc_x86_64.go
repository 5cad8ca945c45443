package loader

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
)

// Relocation arithmetic for x86_64, after the psABI's table:
// S symbol, A addend, P place, GOT base of the GOT, G offset of the
// symbol's GOT entry, Z symbol size.

func usesGOTX86(t elf.R_X86_64) bool {
	switch t {
	case elf.R_X86_64_GOTPCREL, elf.R_X86_64_GOTPCRELX, elf.R_X86_64_REX_GOTPCRELX,
		elf.R_X86_64_GOT32, elf.R_X86_64_GOT64, elf.R_X86_64_GOTPCREL64, elf.R_X86_64_GOTPLT64:
		return true
	}
	return false
}

func (l *linker) applyX86(sec *section, r rela) error {
	t := elf.R_X86_64(r.typ)
	S := l.addrs[r.sym]
	A := r.addend
	GOT := l.base + l.lay.gotOff
	le := binary.LittleEndian

	put64 := func(v uint64) error {
		b, _, err := l.field(sec, r, 8)
		if err != nil {
			return err
		}
		le.PutUint64(b, v)
		return nil
	}
	// putS32 stores a value that must fit in a signed 32-bit field.
	putS32 := func(v int64) error {
		b, _, err := l.field(sec, r, 4)
		if err != nil {
			return err
		}
		if !fitsSigned(v, 32) {
			return fmt.Errorf("%w: %#x does not fit in 32 signed bits", ErrOutOfRange, v)
		}
		le.PutUint32(b, uint32(v))
		return nil
	}
	place := func(width uint64) (uint64, error) {
		_, p, err := l.field(sec, r, width)
		return p, err
	}
	gotEntry := func() (uint64, error) { return l.got(r.sym, 0) }

	switch t {
	case elf.R_X86_64_NONE:
		return nil
	case elf.R_X86_64_64:
		return put64(S + uint64(A))
	case elf.R_X86_64_PC32, elf.R_X86_64_PLT32:
		P, err := place(4)
		if err != nil {
			return err
		}
		v := int64(S + uint64(A) - P)
		if t == elf.R_X86_64_PLT32 && !fitsSigned(v, 32) && l.o.syms[r.sym].shndx == elf.SHN_UNDEF {
			// A call to a host symbol beyond ±2 GiB: go through a stub.
			st, err := l.stub(r.sym)
			if err != nil {
				return err
			}
			v = int64(st + uint64(A) - P)
		}
		return putS32(v)
	case elf.R_X86_64_GOTPCREL, elf.R_X86_64_GOTPCRELX, elf.R_X86_64_REX_GOTPCRELX:
		// The relaxable forms stay unrelaxed: the GOT is always there.
		P, err := place(4)
		if err != nil {
			return err
		}
		e, err := gotEntry()
		if err != nil {
			return err
		}
		return putS32(int64(e + uint64(A) - P))
	case elf.R_X86_64_32:
		b, _, err := l.field(sec, r, 4)
		if err != nil {
			return err
		}
		v := S + uint64(A)
		if v > 0xffffffff {
			return fmt.Errorf("%w: %#x does not fit in 32 unsigned bits (build with -fPIC or -mcmodel=large)", ErrOutOfRange, v)
		}
		le.PutUint32(b, uint32(v))
		return nil
	case elf.R_X86_64_32S:
		v := int64(S + uint64(A))
		if !fitsSigned(v, 32) {
			return fmt.Errorf("%w: %#x does not fit in 32 signed bits (build with -fPIC or -mcmodel=large)", ErrOutOfRange, v)
		}
		return putS32(v)
	case elf.R_X86_64_16, elf.R_X86_64_PC16, elf.R_X86_64_8, elf.R_X86_64_PC8:
		w := uint64(2)
		if t == elf.R_X86_64_8 || t == elf.R_X86_64_PC8 {
			w = 1
		}
		b, P, err := l.field(sec, r, w)
		if err != nil {
			return err
		}
		v := int64(S + uint64(A))
		if t == elf.R_X86_64_PC16 || t == elf.R_X86_64_PC8 {
			v -= int64(P)
		}
		if !fitsSigned(v, uint(w*8)) && (v < 0 || v >= 1<<(w*8)) {
			return fmt.Errorf("%w: %#x does not fit in %d bits", ErrOutOfRange, v, w*8)
		}
		if w == 2 {
			le.PutUint16(b, uint16(v))
		} else {
			b[0] = byte(v)
		}
		return nil
	case elf.R_X86_64_PC64:
		P, err := place(8)
		if err != nil {
			return err
		}
		return put64(S + uint64(A) - P)
	case elf.R_X86_64_GOTOFF64:
		return put64(S + uint64(A) - GOT)
	case elf.R_X86_64_GOTPC32:
		P, err := place(4)
		if err != nil {
			return err
		}
		return putS32(int64(GOT + uint64(A) - P))
	case elf.R_X86_64_GOTPC64:
		P, err := place(8)
		if err != nil {
			return err
		}
		return put64(GOT + uint64(A) - P)
	case elf.R_X86_64_GOT64, elf.R_X86_64_GOTPLT64:
		e, err := gotEntry()
		if err != nil {
			return err
		}
		return put64(e - GOT + uint64(A))
	case elf.R_X86_64_GOT32:
		e, err := gotEntry()
		if err != nil {
			return err
		}
		return putS32(int64(e - GOT + uint64(A)))
	case elf.R_X86_64_GOTPCREL64:
		P, err := place(8)
		if err != nil {
			return err
		}
		e, err := gotEntry()
		if err != nil {
			return err
		}
		return put64(e + uint64(A) - P)
	case elf.R_X86_64_PLTOFF64:
		// Large-model call through the GOT base: any 64-bit value works,
		// so the "PLT entry" is the symbol itself.
		return put64(S + uint64(A) - GOT)
	case elf.R_X86_64_SIZE32:
		return putS32(int64(l.o.syms[r.sym].size) + A)
	case elf.R_X86_64_SIZE64:
		return put64(l.o.syms[r.sym].size + uint64(A))
	case elf.R_X86_64_TPOFF64, elf.R_X86_64_TPOFF32, elf.R_X86_64_DTPMOD64, elf.R_X86_64_DTPOFF64,
		elf.R_X86_64_DTPOFF32, elf.R_X86_64_TLSGD, elf.R_X86_64_TLSLD, elf.R_X86_64_GOTTPOFF,
		elf.R_X86_64_GOTPC32_TLSDESC, elf.R_X86_64_TLSDESC_CALL, elf.R_X86_64_TLSDESC:
		return ErrTLS
	}
	return ErrUnknownRelocation
}
