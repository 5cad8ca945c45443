package loader

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"sort"
)

// gotKey names a GOT entry. aarch64 GOT relocations address the entry of
// S+A, so the addend is part of the key there; on x86_64 it is always 0.
type gotKey struct {
	sym    uint32
	addend int64
}

// stubSize is the size of one far-call stub on either architecture:
// x86_64 "jmp *0(%rip); .quad addr" (14 bytes, padded) and aarch64
// "ldr x16, #8; br x16; .quad addr".
const stubSize = 16

// layout is where everything goes, as offsets from the image base.
type layout struct {
	size     uint64
	segStart [numSegments]uint64
	segEnd   [numSegments]uint64
	stubOff  uint64
	stubCap  int
	gotOff   uint64
	got      map[gotKey]uint64 // key → offset of the entry from gotOff
	gotKeys  []gotKey          // in entry order
	common   map[uint32]uint64 // COMMON symbol → offset
	// needLow is set for x86_64 code with absolute 32-bit relocations
	// (non-PIC small model): it only works mapped in the low 2 GiB.
	needLow bool
}

// linker links one object into memory at a base address.
type linker struct {
	o      *object
	lay    layout
	mem    []byte // the whole image, lay.size bytes
	base   uint64 // address of mem[0] as the code will see it
	addrs  []uint64
	stubs  map[uint32]uint64 // symbol → stub address
	nstubs int
}

// maxImage bounds the memory one object may ask for: kernels are small,
// and a corrupt header must not make the node map gigabytes.
const maxImage = 256 << 20

func alignUp(v, a uint64) uint64 { return (v + a - 1) &^ (a - 1) }

// plan lays the object out. page is the system page size.
func (o *object) plan(page uint64) (layout, error) {
	// The maps are made on first use: most kernels have no COMMON symbols
	// and PIC-less ones no GOT.
	var lay layout
	stubSym := make([]bool, len(o.syms))
	for _, rs := range o.relas {
		for _, r := range rs.relocs {
			if o.usesGOT(r.typ) {
				k := gotKey{sym: r.sym}
				if o.machine == elf.EM_AARCH64 {
					k.addend = r.addend
				}
				if _, ok := lay.got[k]; !ok {
					if lay.got == nil {
						lay.got = map[gotKey]uint64{}
					}
					lay.got[k] = uint64(len(lay.gotKeys)) * 8
					lay.gotKeys = append(lay.gotKeys, k)
				}
			}
			if o.machine == elf.EM_X86_64 && (elf.R_X86_64(r.typ) == elf.R_X86_64_32 || elf.R_X86_64(r.typ) == elf.R_X86_64_32S) {
				lay.needLow = true
			}
			if o.isBranch(r.typ) && r.sym != 0 && o.syms[r.sym].shndx == elf.SHN_UNDEF {
				if !stubSym[r.sym] {
					stubSym[r.sym] = true
					lay.stubCap++
				}
			}
		}
	}

	var cur uint64
	for seg := segText; seg < numSegments; seg++ {
		if seg != segRelro {
			// Read-only data shares the code's pages and protection (see
			// protect): only code|rodata and data are page-aligned.
			cur = alignUp(cur, page)
		}
		lay.segStart[seg] = cur
		for i := range o.sections {
			s := &o.sections[i]
			if s.seg != seg {
				continue
			}
			cur = alignUp(cur, s.align)
			// Compared before adding: a NOBITS section's size is any
			// number the file says, and the sum could wrap.
			if cur > maxImage || s.size > maxImage-cur {
				return lay, formatErr("section %q: image larger than %d bytes", s.name, maxImage)
			}
			s.addr = cur
			cur += s.size
		}
		switch seg {
		case segText:
			cur = alignUp(cur, stubSize)
			lay.stubOff = cur
			cur += uint64(lay.stubCap) * stubSize
		case segRelro:
			cur = alignUp(cur, 8)
			lay.gotOff = cur
			cur += uint64(len(lay.gotKeys)) * 8
		case segData:
			for i := 1; i < len(o.syms); i++ {
				s := &o.syms[i]
				if s.shndx != elf.SHN_COMMON {
					continue
				}
				// For COMMON, st_value is the alignment.
				a := s.value
				if a == 0 {
					a = 1
				}
				if a&(a-1) != 0 || a > maxAlign || s.size > 1<<32 {
					return lay, formatErr("COMMON symbol %q: alignment %d size %d", s.name, s.value, s.size)
				}
				cur = alignUp(cur, a)
				if lay.common == nil {
					lay.common = map[uint32]uint64{}
				}
				lay.common[uint32(i)] = cur
				cur += s.size
			}
		}
		if cur > maxImage {
			return lay, formatErr("image larger than %d bytes", maxImage)
		}
		lay.segEnd[seg] = cur
	}
	lay.size = alignUp(cur, page)
	if lay.size == 0 {
		lay.size = page
	}
	return lay, nil
}

// resolve computes every symbol's address. Undefined symbols come from syms.
func (l *linker) resolve(syms SymbolTable) error {
	o := l.o
	l.addrs = make([]uint64, len(o.syms))
	var missing []string
	for i := 1; i < len(o.syms); i++ {
		s := &o.syms[i]
		switch {
		case s.shndx == elf.SHN_UNDEF:
			if s.name == "" {
				continue
			}
			if s.name == "_GLOBAL_OFFSET_TABLE_" {
				l.addrs[i] = l.base + l.lay.gotOff
				continue
			}
			var a uintptr
			ok := false
			if syms != nil {
				a, ok = syms.Lookup(s.name)
			}
			switch {
			case ok:
				l.addrs[i] = uint64(a)
			case elf.ST_BIND(s.info) == elf.STB_WEAK:
				l.addrs[i] = 0 // an absent weak symbol is NULL
			default:
				missing = append(missing, s.name)
			}
		case s.shndx == elf.SHN_ABS:
			l.addrs[i] = s.value
		case s.shndx == elf.SHN_COMMON:
			l.addrs[i] = l.base + l.lay.common[uint32(i)]
		case s.shndx >= elf.SHN_LORESERVE:
			return formatErr("symbol %q: special section index %#x", s.name, uint16(s.shndx))
		default:
			sec := &o.sections[s.shndx]
			if sec.seg == segNone {
				continue // lives in a section that is not loaded
			}
			l.addrs[i] = l.base + sec.addr + s.value
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return &UnresolvedError{Names: missing}
	}
	return nil
}

// link copies the sections into l.mem, fills the GOT and applies every
// relocation.
func (l *linker) link(syms SymbolTable) error {
	o := l.o
	if err := l.resolve(syms); err != nil {
		return err
	}
	for i := range o.sections {
		s := &o.sections[i]
		if s.seg == segNone || s.nobits {
			continue
		}
		copy(l.mem[s.addr:s.addr+s.size], o.data[s.off:s.off+s.size])
	}
	for k, off := range l.lay.got {
		if err := l.symbolLoaded(k.sym); err != nil {
			return err
		}
		binary.LittleEndian.PutUint64(l.mem[l.lay.gotOff+off:], l.addrs[k.sym]+uint64(k.addend))
	}
	for _, rs := range o.relas {
		sec := &o.sections[rs.target]
		for _, r := range rs.relocs {
			if err := l.symbolLoaded(r.sym); err != nil {
				return l.relocErr(sec, r, err)
			}
			var err error
			if o.machine == elf.EM_X86_64 {
				err = l.applyX86(sec, r)
			} else {
				err = l.applyA64(sec, r)
			}
			if err != nil {
				return l.relocErr(sec, r, err)
			}
		}
	}
	return nil
}

// symbolLoaded refuses references to symbols in sections that are not
// loaded (say, a relocation in .text pointing into .debug_info).
func (l *linker) symbolLoaded(sym uint32) error {
	s := &l.o.syms[sym]
	if sym == 0 || s.shndx == elf.SHN_UNDEF || s.shndx >= elf.SHN_LORESERVE {
		return nil
	}
	if l.o.sections[s.shndx].seg == segNone {
		return formatErr("symbol %q is in section %q, which is not loaded", s.name, l.o.sections[s.shndx].name)
	}
	return nil
}

func (l *linker) relocErr(sec *section, r rela, err error) error {
	name := ""
	if r.sym != 0 {
		s := &l.o.syms[r.sym]
		name = s.name
		if name == "" && s.shndx < elf.SHN_LORESERVE && int(s.shndx) < len(l.o.sections) {
			name = l.o.sections[s.shndx].name
		}
	}
	return &RelocationError{Type: l.o.relocName(r.typ), Section: sec.name, Offset: r.off, Symbol: name, Err: err}
}

func (o *object) relocName(t uint32) string {
	if o.machine == elf.EM_X86_64 {
		return elf.R_X86_64(t).String()
	}
	return elf.R_AARCH64(t).String()
}

func (o *object) usesGOT(t uint32) bool {
	if o.machine == elf.EM_X86_64 {
		return usesGOTX86(elf.R_X86_64(t))
	}
	return usesGOTA64(elf.R_AARCH64(t))
}

func (o *object) isBranch(t uint32) bool {
	if o.machine == elf.EM_X86_64 {
		return elf.R_X86_64(t) == elf.R_X86_64_PLT32
	}
	r := elf.R_AARCH64(t)
	return r == elf.R_AARCH64_CALL26 || r == elf.R_AARCH64_JUMP26
}

// field returns the bytes a relocation patches, checking they lie inside
// the section.
func (l *linker) field(sec *section, r rela, width uint64) ([]byte, uint64, error) {
	if r.off > sec.size || width > sec.size-r.off {
		return nil, 0, formatErr("%d-byte field at %#x past the end of %q", width, r.off, sec.name)
	}
	off := sec.addr + r.off
	return l.mem[off : off+width], l.base + off, nil
}

// stub returns the address of a far-call stub that jumps to sym, making one
// in the code segment the first time.
func (l *linker) stub(sym uint32) (uint64, error) {
	if a, ok := l.stubs[sym]; ok {
		return a, nil
	}
	if l.nstubs >= l.lay.stubCap {
		return 0, fmt.Errorf("%w: no stub slot for %q", ErrOutOfRange, l.o.syms[sym].name)
	}
	off := l.lay.stubOff + uint64(l.nstubs)*stubSize
	b := l.mem[off : off+stubSize]
	if l.o.machine == elf.EM_X86_64 {
		copy(b, []byte{0xff, 0x25, 0, 0, 0, 0}) // jmp *0(%rip)
		binary.LittleEndian.PutUint64(b[6:], l.addrs[sym])
		copy(b[14:], []byte{0xcc, 0xcc}) // int3 padding
	} else {
		binary.LittleEndian.PutUint32(b, 0x58000050)     // ldr x16, #8
		binary.LittleEndian.PutUint32(b[4:], 0xd61f0200) // br x16
		binary.LittleEndian.PutUint64(b[8:], l.addrs[sym])
	}
	if l.stubs == nil {
		l.stubs = map[uint32]uint64{}
	}
	a := l.base + off
	l.stubs[sym] = a
	l.nstubs++
	return a, nil
}

func (l *linker) got(sym uint32, addend int64) (uint64, error) {
	k := gotKey{sym: sym}
	if l.o.machine == elf.EM_AARCH64 {
		k.addend = addend
	}
	off, ok := l.lay.got[k]
	if !ok {
		return 0, fmt.Errorf("BUG: GOT entry for symbol %d not planned", sym)
	}
	return l.base + l.lay.gotOff + off, nil
}

func fitsSigned(v int64, bits uint) bool {
	return v >= -(1<<(bits-1)) && v < 1<<(bits-1)
}
