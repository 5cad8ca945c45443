package loader

import (
	"debug/elf"
	"sort"
)

// EntrySection is where bcship.h's BC_ENTRY places entry points.
const EntrySection = ".text.bcentry"

// Info describes an object without loading it.
type Info struct {
	Machine     elf.Machine
	Globals     []string       // defined global symbols, sorted
	Entries     []string       // global functions in EntrySection, sorted
	Undefined   []string       // undefined symbols the SymbolTable must supply, sorted
	Relocations map[string]int // relocation type name → count, loaded sections only
	Text        uint64         // bytes of code
	ROData      uint64         // bytes of read-only data (with data.rel.ro)
	Data        uint64         // bytes of writable data (with bss and COMMON)
}

// Inspect parses obj and summarises it. It validates the object as Load
// does, short of linking it.
func Inspect(obj []byte) (*Info, error) {
	o, err := parse(obj)
	if err != nil {
		return nil, err
	}
	info := &Info{Machine: o.machine, Relocations: map[string]int{}}
	for i := range o.sections {
		s := &o.sections[i]
		switch s.seg {
		case segText:
			info.Text += s.size
		case segRelro:
			info.ROData += s.size
		case segData:
			info.Data += s.size
		}
	}
	for _, s := range o.syms[1:] {
		switch {
		case s.shndx == elf.SHN_UNDEF:
			if s.name != "" && s.name != "_GLOBAL_OFFSET_TABLE_" {
				info.Undefined = append(info.Undefined, s.name)
			}
			continue
		case s.shndx == elf.SHN_COMMON:
			info.Data += s.size
		}
		bind := elf.ST_BIND(s.info)
		if s.name == "" || (bind != elf.STB_GLOBAL && bind != elf.STB_WEAK) {
			continue
		}
		info.Globals = append(info.Globals, s.name)
		if elf.ST_TYPE(s.info) == elf.STT_FUNC && s.shndx < elf.SHN_LORESERVE &&
			o.sections[s.shndx].name == EntrySection {
			info.Entries = append(info.Entries, s.name)
		}
	}
	for _, rs := range o.relas {
		for _, r := range rs.relocs {
			info.Relocations[o.relocName(r.typ)]++
		}
	}
	sort.Strings(info.Globals)
	sort.Strings(info.Entries)
	sort.Strings(info.Undefined)
	return info, nil
}

// DefinedGlobals lists the global symbols obj defines.
func DefinedGlobals(obj []byte) ([]string, error) {
	info, err := Inspect(obj)
	if err != nil {
		return nil, err
	}
	return info.Globals, nil
}
