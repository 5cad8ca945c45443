package toolchain

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/bcship/bcship/bundle"
	"github.com/bcship/bcship/loader"
)

// TripleFor returns the triple bcship uses for objects of machine m:
// x86_64-linux-gnu, aarch64-linux-gnu or riscv64-linux-gnu.
func TripleFor(m elf.Machine) (string, bool) {
	switch m {
	case elf.EM_X86_64:
		return "x86_64-linux-gnu", true
	case elf.EM_AARCH64:
		return "aarch64-linux-gnu", true
	case elf.EM_RISCV:
		return "riscv64-linux-gnu", true
	}
	return "", false
}

// HostTriple is the triple of the machine this process runs on, as the
// loader sees it.
func HostTriple() (string, bool) { return TripleFor(loader.HostMachine()) }

// ReadCode reads code to ship from path: a bundle (.bcb, recognised by its
// magic, not its name) or a raw relocatable object, which is wrapped into a
// one-triple bundle on the fly (bundle.Wrap) with the triple its ELF header
// names. A bundle is checked as bundle.Read checks it; its signature is not.
func ReadCode(path string) (*bundle.Bundle, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b, err := ParseCode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// Magic numbers ParseCode tells files apart by.
const (
	BundleMagic = "\x7fBCB"
	ELFMagic    = elf.ELFMAG
)

// ParseCode is ReadCode on bytes already read.
func ParseCode(data []byte) (*bundle.Bundle, error) {
	switch {
	case bytes.HasPrefix(data, []byte(BundleMagic)):
		return bundle.Read(data)
	case bytes.HasPrefix(data, []byte(ELFMagic)):
		triple, err := objectTriple(data)
		if err != nil {
			return nil, err
		}
		return bundle.Wrap(data, triple), nil
	}
	return nil, fmt.Errorf("%w: no bundle or ELF magic", ErrNotCode)
}

// objectTriple reads the triple from a relocatable object's ELF header.
func objectTriple(obj []byte) (string, error) {
	f, err := elf.NewFile(bytes.NewReader(obj))
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNotCode, err)
	}
	if f.Type != elf.ET_REL {
		return "", fmt.Errorf("%w: ELF %v, want a relocatable object (ET_REL, from clang -c)", ErrNotCode, f.Type)
	}
	if f.Class != elf.ELFCLASS64 {
		return "", fmt.Errorf("%w: %v object, want 64-bit", ErrNotCode, f.Class)
	}
	t, ok := TripleFor(f.Machine)
	if !ok {
		return "", fmt.Errorf("%w: no triple known for machine %v", ErrNotCode, f.Machine)
	}
	return t, nil
}

// Entries lists the BC_ENTRY functions of a relocatable object, as
// loader.Inspect does. For machines the loader cannot load (riscv64 today)
// it reads the symbol table itself, so bundles may still carry them.
func Entries(obj []byte) ([]string, error) {
	info, err := loader.Inspect(obj)
	if err == nil {
		return info.Entries, nil
	}
	if !errors.Is(err, loader.ErrMachine) {
		return nil, err
	}
	f, ferr := elf.NewFile(bytes.NewReader(obj))
	if ferr != nil {
		return nil, err
	}
	syms, ferr := f.Symbols()
	if ferr != nil {
		return nil, fmt.Errorf("%w: %v", err, ferr)
	}
	var es []string
	for _, s := range syms {
		bind := elf.ST_BIND(s.Info)
		if elf.ST_TYPE(s.Info) != elf.STT_FUNC || (bind != elf.STB_GLOBAL && bind != elf.STB_WEAK) ||
			s.Section == elf.SHN_UNDEF || s.Section >= elf.SHN_LORESERVE || int(s.Section) >= len(f.Sections) {
			continue
		}
		if f.Sections[s.Section].Name == loader.EntrySection {
			es = append(es, s.Name)
		}
	}
	slices.Sort(es)
	return slices.Compact(es), nil
}
