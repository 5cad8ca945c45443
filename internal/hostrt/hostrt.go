package hostrt

import (
	"debug/elf"
	_ "embed"
	"fmt"

	"github.com/bcship/bcship/loader"
)

//go:embed rt.x86_64.o
var objX86 []byte

//go:embed rt.aarch64.o
var objA64 []byte

// Object returns the runtime object for machine m.
func Object(m elf.Machine) ([]byte, error) {
	switch m {
	case elf.EM_X86_64:
		return objX86, nil
	case elf.EM_AARCH64:
		return objA64, nil
	}
	return nil, fmt.Errorf("%w: no host runtime for %v", loader.ErrMachine, m)
}

// Runtime is the host runtime loaded into this process. It is a
// loader.SymbolTable offering the helpers to kernels.
type Runtime struct {
	img *loader.Image
}

// Load maps the runtime for the host's machine.
func Load() (*Runtime, error) {
	obj, err := Object(loader.HostMachine())
	if err != nil {
		return nil, err
	}
	img, err := loader.Load(obj, nil)
	if err != nil {
		return nil, fmt.Errorf("hostrt: loading the runtime: %w", err)
	}
	return &Runtime{img: img}, nil
}

// Lookup implements loader.SymbolTable.
func (r *Runtime) Lookup(name string) (uintptr, bool) { return r.img.Lookup(name) }

// Image is the loaded runtime, for symbolizing faults inside helpers.
func (r *Runtime) Image() *loader.Image { return r.img }

// Close unmaps the runtime. No kernel linked against it may run after.
func (r *Runtime) Close() error { return r.img.Close() }

// Names lists the symbols the runtime offers to kernels. They are the same
// on every architecture.
func Names() ([]string, error) {
	obj, err := Object(loader.HostMachine())
	if err != nil {
		obj = objX86
	}
	return loader.DefinedGlobals(obj)
}

// Table is a loader.SymbolTable naming every runtime symbol at a made-up
// address, for loader.Check on objects of any architecture.
func Table() (loader.Symbols, error) {
	names, err := Names()
	if err != nil {
		return nil, err
	}
	t := loader.Symbols{}
	for i, n := range names {
		t[n] = 0x7f1000000000 + uintptr(i)*64
	}
	return t, nil
}
