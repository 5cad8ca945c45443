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
	addr   uint64 // offset from the image base, once laid out
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
	syms     []elf.Symbol // index i is ELF symbol i (index 0 is the null symbol)
	relas    []relaSection
}

// maxAlign bounds section alignment: larger alignments would need a mapping
// aligned beyond what the loader reserves.
const maxAlign = 1 << 16

func parse(data []byte) (obj *object, err error) {
	// debug/elf is robust but not written for hostile input; a panic in
	// it must cost one error, not the node.
	defer func() {
		if r := recover(); r != nil {
			obj, err = nil, formatErr("parser panic: %v", r)
		}
	}()
	if len(data) < 64 || !bytes.HasPrefix(data, []byte(elf.ELFMAG)) {
		return nil, formatErr("not an ELF file")
	}
	if err := precheck(data); err != nil {
		return nil, err
	}
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	if f.Class != elf.ELFCLASS64 || f.Data != elf.ELFDATA2LSB {
		return nil, fmt.Errorf("%w: %v %v (want 64-bit little-endian)", ErrMachine, f.Class, f.Data)
	}
	if f.Type != elf.ET_REL {
		return nil, fmt.Errorf("%w: type %v", ErrNotRelocatable, f.Type)
	}
	if f.Machine != elf.EM_X86_64 && f.Machine != elf.EM_AARCH64 {
		return nil, fmt.Errorf("%w: %v", ErrMachine, f.Machine)
	}
	o := &object{machine: f.Machine, data: data, sections: make([]section, len(f.Sections))}
	for i, s := range f.Sections {
		sec := section{
			name:   s.Name,
			typ:    s.Type,
			flags:  s.Flags,
			off:    s.Offset,
			size:   s.Size,
			align:  s.Addralign,
			nobits: s.Type == elf.SHT_NOBITS,
		}
		if sec.align == 0 {
			sec.align = 1
		}
		if sec.align&(sec.align-1) != 0 || sec.align > maxAlign {
			return nil, formatErr("section %q: alignment %d", s.Name, s.Addralign)
		}
		if !sec.nobits && s.Type != elf.SHT_NULL && (sec.off > uint64(len(data)) || sec.size > uint64(len(data))-sec.off) {
			return nil, formatErr("section %q extends past the end of the file", s.Name)
		}
		seg, err := classify(f.Machine, &sec)
		if err != nil {
			return nil, err
		}
		sec.seg = seg
		o.sections[i] = sec
	}
	if o.syms, err = o.decodeSymbols(f); err != nil {
		return nil, err
	}
	for i := range o.syms[1:] {
		s := &o.syms[i+1]
		if elf.ST_TYPE(s.Info) == elf.STT_TLS {
			return nil, fmt.Errorf("%w: symbol %q", ErrTLS, s.Name)
		}
		if elf.ST_TYPE(s.Info) == elf.STT_GNU_IFUNC {
			return nil, fmt.Errorf("%w: symbol %q is an IFUNC", ErrUnknownRelocation, s.Name)
		}
		if s.Section < elf.SHN_LORESERVE && s.Section != elf.SHN_UNDEF && int(s.Section) >= len(o.sections) {
			return nil, formatErr("symbol %q: section index %d", s.Name, s.Section)
		}
	}
	for i, s := range f.Sections {
		switch s.Type {
		case elf.SHT_REL:
			if int(s.Info) < len(o.sections) && o.sections[s.Info].seg != segNone {
				return nil, formatErr("section %q: REL relocations (only RELA is supported)", s.Name)
			}
		case elf.SHT_RELA:
			target := int(s.Info)
			if target <= 0 || target >= len(o.sections) {
				return nil, formatErr("section %q: relocates section %d", s.Name, s.Info)
			}
			if o.sections[target].seg == segNone {
				continue // debug info, .eh_frame, ...: never loaded
			}
			rs, err := o.decodeRela(&o.sections[i], target)
			if err != nil {
				return nil, err
			}
			o.relas = append(o.relas, rs)
		}
	}
	return o, nil
}

// precheck validates the ELF header and every section header against the
// size of the input before debug/elf sees it: debug/elf trusts section
// sizes when reading the section-name table and would allocate (and zero)
// memory in proportion to a corrupt size field.
func precheck(data []byte) error {
	le := binary.LittleEndian
	if elf.Class(data[elf.EI_CLASS]) != elf.ELFCLASS64 || elf.Data(data[elf.EI_DATA]) != elf.ELFDATA2LSB {
		return fmt.Errorf("%w: %v %v (want 64-bit little-endian)", ErrMachine,
			elf.Class(data[elf.EI_CLASS]), elf.Data(data[elf.EI_DATA]))
	}
	shoff := le.Uint64(data[0x28:])
	shentsize := le.Uint16(data[0x3a:])
	shnum := uint64(le.Uint16(data[0x3c:]))
	if shnum == 0 || shentsize != 64 {
		return formatErr("section header table: %d entries of %d bytes", shnum, shentsize)
	}
	if shoff > uint64(len(data)) || shnum*64 > uint64(len(data))-shoff {
		return formatErr("section header table past the end of the file")
	}
	// debug/elf reads the section-name table whole; a NOBITS one "holds"
	// as many zero bytes as its size field claims.
	shstrndx := uint64(le.Uint16(data[0x3e:]))
	if shstrndx >= shnum || elf.SectionType(le.Uint32(data[shoff+64*shstrndx+4:])) != elf.SHT_STRTAB {
		return formatErr("section-name table index %d", shstrndx)
	}
	for i := uint64(0); i < shnum; i++ {
		h := data[shoff+64*i:]
		typ := elf.SectionType(le.Uint32(h[4:]))
		off, size := le.Uint64(h[0x18:]), le.Uint64(h[0x20:])
		if typ == elf.SHT_NULL || typ == elf.SHT_NOBITS {
			continue
		}
		if off > uint64(len(data)) || size > uint64(len(data))-off {
			return formatErr("section %d extends past the end of the file", i)
		}
	}
	return nil
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

// decodeSymbols reads the symbol table. It is debug/elf's Symbols without
// its per-name allocations: names are substrings of one copy of the string
// table, which keeps loading a small object cheap. Index 0 is the null
// symbol, so relocation symbol indexes need no adjusting.
func (o *object) decodeSymbols(f *elf.File) ([]elf.Symbol, error) {
	var symtab *elf.Section
	for _, s := range f.Sections {
		if s.Type == elf.SHT_SYMTAB {
			if symtab != nil {
				return nil, formatErr("more than one symbol table")
			}
			symtab = s
		}
	}
	if symtab == nil {
		return []elf.Symbol{{}}, nil
	}
	if symtab.Link == 0 || int(symtab.Link) >= len(f.Sections) || f.Sections[symtab.Link].Type != elf.SHT_STRTAB {
		return nil, formatErr("symbol table has no string table")
	}
	st := &o.sections[symtab.Link]
	strtab := string(o.data[st.off : st.off+st.size])
	b := o.data[symtab.Offset : symtab.Offset+symtab.Size]
	if len(b)%symSize != 0 || len(b) == 0 {
		return nil, formatErr("symbol table size %d", len(b))
	}
	le := binary.LittleEndian
	syms := make([]elf.Symbol, len(b)/symSize)
	for i := 1; i < len(syms); i++ {
		e := b[i*symSize:]
		name := le.Uint32(e)
		if uint64(name) >= uint64(len(strtab)) && name != 0 {
			return nil, formatErr("symbol %d: name offset %d past the string table", i, name)
		}
		n := ""
		if name != 0 {
			end := strings.IndexByte(strtab[name:], 0)
			if end < 0 {
				return nil, formatErr("symbol %d: unterminated name", i)
			}
			n = strtab[name : int(name)+end]
		}
		syms[i] = elf.Symbol{
			Name:    n,
			Info:    e[4],
			Other:   e[5],
			Section: elf.SectionIndex(le.Uint16(e[6:])),
			Value:   le.Uint64(e[8:]),
			Size:    le.Uint64(e[16:]),
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
