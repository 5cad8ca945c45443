package toolchain

import (
	"bytes"
	"debug/elf"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bcship/bcship/bundle"
	"github.com/bcship/bcship/kernels"
)

func TestReadCodeRawObject(t *testing.T) {
	for m, triple := range map[elf.Machine]string{elf.EM_X86_64: "x86_64-linux-gnu", elf.EM_AARCH64: "aarch64-linux-gnu"} {
		obj, err := kernels.Object("chase", m)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), "chase.o")
		os.WriteFile(p, obj, 0o644)
		b, err := ReadCode(p)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := b.Object(triple)
		if len(b.Objects) != 1 || !ok || !bytes.Equal(got, obj) || !b.Created.Equal(time.Unix(0, 0)) {
			t.Fatalf("%v: wrapped as %+v", m, b.Manifest)
		}
		// Wrapping is deterministic: the same object, the same code hash.
		if again, _ := ParseCode(obj); again.Hash() != b.Hash() {
			t.Fatal("wrapping twice gave two code hashes")
		}
		if es, err := Entries(obj); err != nil || len(es) != 1 || es[0] != "chase" {
			t.Fatalf("entries %v, %v", es, err)
		}
	}
}

func TestReadCodeBundle(t *testing.T) {
	obj, _ := kernels.Object("chase", elf.EM_AARCH64)
	b := bundle.New("chase", []string{"chase"}, 0)
	b.AddObject("aarch64-linux-gnu", obj)
	data, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "k.o") // the name does not matter
	os.WriteFile(p, data, 0o644)
	got, err := ReadCode(p)
	if err != nil || got.Hash() != b.Hash() {
		t.Fatalf("ReadCode: %v", err)
	}
	data[len(data)-1] ^= 1
	if _, err := ParseCode(data); !errors.Is(err, bundle.ErrCorrupt) {
		t.Fatalf("damaged bundle: %v", err)
	}
}

func TestReadCodeRejects(t *testing.T) {
	obj, _ := kernels.Object("chase", elf.EM_X86_64)
	exe := bytes.Clone(obj)
	exe[16] = byte(elf.ET_EXEC) // e_type, little-endian
	ppc := bytes.Clone(obj)
	ppc[18] = byte(elf.EM_PPC64) // e_machine
	for name, data := range map[string][]byte{
		"text":       []byte("int main() {}"),
		"empty":      nil,
		"executable": exe,
		"ppc64":      ppc,
		"truncated":  obj[:40],
	} {
		if _, err := ParseCode(data); !errors.Is(err, ErrNotCode) {
			t.Errorf("%s: got %v, want ErrNotCode", name, err)
		}
	}
	if _, err := ReadCode(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	for m, want := range map[elf.Machine]string{elf.EM_RISCV: "riscv64-linux-gnu", elf.EM_386: ""} {
		if got, _ := TripleFor(m); got != want {
			t.Errorf("TripleFor(%v) = %q, want %q", m, got, want)
		}
	}
}
