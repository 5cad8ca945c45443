package loader

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"strings"
)

// segment is one of the image's protection domains, in address order.
type segment int

const (
	segNone  segment = iota // not loaded
	segText                 // read+execute: code, then call stubs
	segRelro                // read-only after linking: rodata, data.rel.ro, GOT
	segData                 // read+write: data, bss, COMMON
	numSegments
)

// section is an ELF section as the loader sees it.
type section struct {
	name   string
	typ    elf.SectionType
	flags  elf.SectionFlag
	off    uint64 // file offset
	size   uint64
	align  uint64
	seg    segment
	nobits bool
	link   uint32 // sh_link: the string table of a symbol table
	info   uint32 // sh_info: the section a RELA section patches
	addr   uint64 // offset from the image base, once laid out
}

// symbol is an Elf64_Sym, decoded: debug/elf's Symbol without the
// dynamic-linking fields, which would only make the table bigger to build
// and to scan.
type symbol struct {
	name  string
	info  uint8
	other uint8
	shndx elf.SectionIndex
	value uint64
	size  uint64
}

// rela is one relocation, decoded.
type rela struct {
	off    uint64 // in the target section
	typ    uint32
	sym    uint32 // ELF symbol index (0 = none)
	addend int64
}

// relaSection holds the relocations that patch one loaded section.
type relaSection struct {
	target int // section index
	relocs []rela
}

// object is a parsed, validated ET_REL file. Parsing is deterministic and
// touches no memory outside the input.
type object struct {
	machine  elf.Machine
	data     []byte
	sections []section
	syms     []symbol // index i is ELF symbol i (index 0 is the null symbol)
	relas    []relaSection
}

// maxAlign bounds section alignment: larger alignments would need a mapping
// aligned beyond what the loader reserves.
const maxAlign = 1 << 16

// parse decodes and validates an ET_REL object.
//
// The headers are decoded here, with debug/elf's types and constants, rather
// than by elf.NewFile: NewFile builds a reader per section and costs more
// than all of linking a small kernel (≈14 µs of a 4 KiB load, measured), and
// it trusts size fields when reading the section-name table. TestParse-
// MatchesDebugElf checks that both decode every committed object alike.
func parse(data []byte) (*object, error) {
	le := binary.LittleEndian
	if len(data) < elfHeaderSize || !bytes.HasPrefix(data, []byte(elf.ELFMAG)) {
		return nil, formatErr("not an ELF file")
	}
	if elf.Class(data[elf.EI_CLASS]) != elf.ELFCLASS64 || elf.Data(data[elf.EI_DATA]) != elf.ELFDATA2LSB {
		return nil, fmt.Errorf("%w: %v %v (want 64-bit little-endian)", ErrMachine,
			elf.Class(data[elf.EI_CLASS]), elf.Data(data[elf.EI_DATA]))
	}
	if elf.Version(data[elf.EI_VERSION]) != elf.EV_CURRENT || le.Uint32(data[0x14:]) != uint32(elf.EV_CURRENT) {
		return nil, formatErr("ELF version %d", data[elf.EI_VERSION])
	}
	if t := elf.Type(le.Uint16(data[0x10:])); t != elf.ET_REL {
		return nil, fmt.Errorf("%w: type %v", ErrNotRelocatable, t)
	}
	machine := elf.Machine(le.Uint16(data[0x12:]))
	if machine != elf.EM_X86_64 && machine != elf.EM_AARCH64 {
		return nil, fmt.Errorf("%w: %v", ErrMachine, machine)
	}
	shoff := le.Uint64(data[0x28:])
	shentsize := le.Uint16(data[0x3a:])
	shnum := uint64(le.Uint16(data[0x3c:]))
	shstrndx := uint64(le.Uint16(data[0x3e:]))
	if shnum == 0 || shentsize != sectionHeaderSize {
		return nil, formatErr("section header table: %d entries of %d bytes", shnum, shentsize)
	}
	if shoff > uint64(len(data)) || shnum*sectionHeaderSize > uint64(len(data))-shoff {
		return nil, formatErr("section header table past the end of the file")
	}
	o := &object{machine: machine, data: data, sections: make([]section, shnum)}
	nameOffs := make([]uint32, shnum)
	for i := range o.sections {
		h := data[shoff+sectionHeaderSize*uint64(i):]
		sec := section{
			typ:   elf.SectionType(le.Uint32(h[4:])),
			flags: elf.SectionFlag(le.Uint64(h[8:])),
			off:   le.Uint64(h[0x18:]),
			size:  le.Uint64(h[0x20:]),
			link:  le.Uint32(h[0x28:]),
			info:  le.Uint32(h[0x2c:]),
			align: le.Uint64(h[0x30:]),
		}
		nameOffs[i] = le.Uint32(h)
		sec.nobits = sec.typ == elf.SHT_NOBITS
		if !sec.nobits && sec.typ != elf.SHT_NULL && (sec.off > uint64(len(data)) || sec.size > uint64(len(data))-sec.off) {
			return nil, formatErr("section %d extends past the end of the file", i)
		}
		o.sections[i] = sec
	}
	if shstrndx == 0 || shstrndx >= shnum || o.sections[shstrndx].typ != elf.SHT_STRTAB {
		return nil, formatErr("section-name table index %d", shstrndx)
	}
	names := o.strtab(shstrndx)
	for i := range o.sections {
		sec := &o.sections[i]
		var ok bool
		if sec.name, ok = cstring(names, nameOffs[i]); !ok {
			return nil, formatErr("section %d: name offset %d outside the name table", i, nameOffs[i])
		}
		if sec.align == 0 {
			sec.align = 1
		}
		if sec.align&(sec.align-1) != 0 || sec.align > maxAlign {
			return nil, formatErr("section %q: alignment %d", sec.name, sec.align)
		}
		seg, err := classify(machine, sec)
		if err != nil {
			return nil, err
		}
		sec.seg = seg
	}
	var err error
	if o.syms, err = o.decodeSymbols(); err != nil {
		return nil, err
	}
	for i := range o.syms[1:] {
		s := &o.syms[i+1]
		if elf.ST_TYPE(s.info) == elf.STT_TLS {
			return nil, fmt.Errorf("%w: symbol %q", ErrTLS, s.name)
		}
		if elf.ST_TYPE(s.info) == elf.STT_GNU_IFUNC {
			return nil, fmt.Errorf("%w: symbol %q is an IFUNC", ErrUnknownRelocation, s.name)
		}
		if s.shndx < elf.SHN_LORESERVE && s.shndx != elf.SHN_UNDEF && int(s.shndx) >= len(o.sections) {
			return nil, formatErr("symbol %q: section index %d", s.name, s.shndx)
		}
	}
	for i := range o.sections {
		s := &o.sections[i]
		switch s.typ {
		case elf.SHT_REL:
			if int(s.info) < len(o.sections) && o.sections[s.info].seg != segNone {
				return nil, formatErr("section %q: REL relocations (only RELA is supported)", s.name)
			}
		case elf.SHT_RELA:
			target := int(s.info)
			if target <= 0 || target >= len(o.sections) {
				return nil, formatErr("section %q: relocates section %d", s.name, s.info)
			}
			if o.sections[target].seg == segNone {
				continue // debug info, .eh_frame, ...: never loaded
			}
			rs, err := o.decodeRela(s, target)
			if err != nil {
				return nil, err
			}
			o.relas = append(o.relas, rs)
		}
	}
	return o, nil
}

// Sizes of the ELF64 headers.
const (
	elfHeaderSize     = 64
	sectionHeaderSize = 64
)

// strtab returns section i's bytes as one string, so that names can be
// substrings of it without an allocation each.
func (o *object) strtab(i uint64) string {
	s := &o.sections[i]
	return string(o.data[s.off : s.off+s.size])
}

// cstring returns the NUL-terminated string at off in tab.
func cstring(tab string, off uint32) (string, bool) {
	if uint64(off) >= uint64(len(tab)) {
		return "", off == 0
	}
	end := strings.IndexByte(tab[off:], 0)
	if end < 0 {
		return "", false
	}
	return tab[off : int(off)+end], true
}

// classify picks the segment of a section, or refuses it.
func classify(m elf.Machine, s *section) (segment, error) {
	if s.flags&elf.SHF_TLS != 0 {
		return segNone, fmt.Errorf("%w: section %q", ErrTLS, s.name)
	}
	switch s.typ {
	case elf.SHT_INIT_ARRAY, elf.SHT_FINI_ARRAY, elf.SHT_PREINIT_ARRAY:
		if s.size > 0 {
			return segNone, fmt.Errorf("%w: section %q", ErrStaticConstructor, s.name)
		}
		return segNone, nil
	}
	if s.flags&elf.SHF_ALLOC == 0 {
		return segNone, nil
	}
	name := s.name
	if name == ".ctors" || name == ".dtors" || strings.HasPrefix(name, ".ctors.") || strings.HasPrefix(name, ".dtors.") {
		if s.size > 0 {
			return segNone, fmt.Errorf("%w: section %q", ErrStaticConstructor, name)
		}
		return segNone, nil
	}
	// Unwind tables are for debuggers and C++ exceptions; shipped code has
	// neither, and the executor unwinds by resetting the stack. Dropping
	// them also drops their relocations.
	if name == ".eh_frame" || (m == elf.EM_X86_64 && s.typ == shtX86Unwind) {
		return segNone, nil
	}
	switch s.typ {
	case elf.SHT_PROGBITS, elf.SHT_NOBITS, shtX86Unwind:
	case elf.SHT_NOTE:
		return segNone, nil
	default:
		return segNone, formatErr("section %q: unsupported allocated section type %v", name, s.typ)
	}
	switch {
	case s.flags&elf.SHF_EXECINSTR != 0:
		if s.flags&elf.SHF_WRITE != 0 {
			return segNone, formatErr("section %q is writable and executable", name)
		}
		return segText, nil
	case s.flags&elf.SHF_WRITE == 0:
		return segRelro, nil
	case name == ".data.rel.ro" || strings.HasPrefix(name, ".data.rel.ro."):
		// Written only by relocations: read-only once linked.
		return segRelro, nil
	default:
		return segData, nil
	}
}

const (
	relaSize = 24
	symSize  = 24 // sizeof(Elf64_Sym)
)

// decodeSymbols reads the symbol table. Names are substrings of one copy
// of the string table. Index 0 is the null symbol, so relocation symbol
// indexes need no adjusting.
func (o *object) decodeSymbols() ([]symbol, error) {
	var symtab *section
	for i := range o.sections {
		if o.sections[i].typ == elf.SHT_SYMTAB {
			if symtab != nil {
				return nil, formatErr("more than one symbol table")
			}
			symtab = &o.sections[i]
		}
	}
	if symtab == nil {
		return []symbol{{}}, nil
	}
	if symtab.link == 0 || int(symtab.link) >= len(o.sections) || o.sections[symtab.link].typ != elf.SHT_STRTAB {
		return nil, formatErr("symbol table has no string table")
	}
	strtab := o.strtab(uint64(symtab.link))
	b := o.data[symtab.off : symtab.off+symtab.size]
	if len(b)%symSize != 0 || len(b) == 0 {
		return nil, formatErr("symbol table size %d", len(b))
	}
	le := binary.LittleEndian
	syms := make([]symbol, len(b)/symSize)
	for i := 1; i < len(syms); i++ {
		e := b[i*symSize:]
		name, ok := cstring(strtab, le.Uint32(e))
		if !ok {
			return nil, formatErr("symbol %d: bad name offset %d", i, le.Uint32(e))
		}
		syms[i] = symbol{
			name:  name,
			info:  e[4],
			other: e[5],
			shndx: elf.SectionIndex(le.Uint16(e[6:])),
			value: le.Uint64(e[8:]),
			size:  le.Uint64(e[16:]),
		}
	}
	return syms, nil
}

func (o *object) decodeRela(rs *section, target int) (relaSection, error) {
	if rs.size%relaSize != 0 {
		return relaSection{}, formatErr("section %q: size %d is not a multiple of %d", rs.name, rs.size, relaSize)
	}
	b := o.data[rs.off : rs.off+rs.size]
	out := relaSection{target: target, relocs: make([]rela, 0, len(b)/relaSize)}
	for len(b) >= relaSize {
		info := binary.LittleEndian.Uint64(b[8:])
		r := rela{
			off:    binary.LittleEndian.Uint64(b),
			typ:    uint32(info),
			sym:    uint32(info >> 32),
			addend: int64(binary.LittleEndian.Uint64(b[16:])),
		}
		b = b[relaSize:]
		if int(r.sym) >= len(o.syms) {
			return relaSection{}, formatErr("section %q: relocation symbol %d out of range", rs.name, r.sym)
		}
		if r.off >= o.sections[target].size || o.sections[target].size-r.off < 1 {
			return relaSection{}, formatErr("section %q: relocation offset %#x outside %q", rs.name, r.off, o.sections[target].name)
		}
		out.relocs = append(out.relocs, r)
	}
	return out, nil
}

// shtX86Unwind is SHT_X86_64_UNWIND, the type of .eh_frame on x86_64;
// debug/elf does not name it.
const shtX86Unwind = elf.SectionType(0x70000001)
