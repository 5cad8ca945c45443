package loader

import (
	"bytes"
	"debug/elf"
	"os"
	"path/filepath"
	"testing"
)

// TestParseMatchesDebugElf: parse decodes headers and symbols itself (for
// speed); on every committed object it must agree with debug/elf.
func TestParseMatchesDebugElf(t *testing.T) {
	objs, err := filepath.Glob("../testdata/*.o")
	if err != nil || len(objs) == 0 {
		t.Fatalf("no test objects: %v", err)
	}
	for _, path := range objs {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		f, err := elf.NewFile(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: debug/elf: %v", path, err)
		}
		o, err := parse(data)
		if err != nil {
			// Objects the loader refuses on purpose (TLS, constructors)
			// still parse as far as their sections.
			continue
		}
		if o.machine != f.Machine || len(o.sections) != len(f.Sections) {
			t.Fatalf("%s: machine %v/%v, %d/%d sections", path, o.machine, f.Machine, len(o.sections), len(f.Sections))
		}
		for i, s := range f.Sections {
			g := o.sections[i]
			align := s.Addralign
			if align == 0 {
				align = 1
			}
			if g.name != s.Name || g.typ != s.Type || g.flags != s.Flags || g.off != s.Offset ||
				g.size != s.Size || g.align != align || g.link != s.Link || g.info != s.Info {
				t.Errorf("%s: section %d: got %+v, debug/elf %+v", path, i, g, s.SectionHeader)
			}
		}
		syms, err := f.Symbols()
		if err != nil {
			t.Fatal(err)
		}
		if len(o.syms) != len(syms)+1 {
			t.Fatalf("%s: %d symbols, debug/elf %d", path, len(o.syms)-1, len(syms))
		}
		for i, s := range syms {
			g := o.syms[i+1]
			if g.name != s.Name || g.info != s.Info || g.other != s.Other || g.shndx != s.Section ||
				g.value != s.Value || g.size != s.Size {
				t.Errorf("%s: symbol %d: got %+v, debug/elf %+v", path, i+1, g, s)
			}
		}
	}
}
