package kernels

import (
	"debug/elf"
	"embed"
	"fmt"
)

//go:embed *.o
var objects embed.FS

// Names are the prebuilt kernels.
var Names = []string{"chase", "lookup", "gather"}

// archName maps an ELF machine to the file name part used by the objects.
func archName(m elf.Machine) (string, error) {
	switch m {
	case elf.EM_X86_64:
		return "x86_64", nil
	case elf.EM_AARCH64:
		return "aarch64", nil
	}
	return "", fmt.Errorf("kernels: no prebuilt kernels for %v", m)
}

// Object returns the prebuilt object of kernel name for machine m.
func Object(name string, m elf.Machine) ([]byte, error) {
	a, err := archName(m)
	if err != nil {
		return nil, err
	}
	b, err := objects.ReadFile(name + "." + a + ".o")
	if err != nil {
		return nil, fmt.Errorf("kernels: no prebuilt %q for %v", name, m)
	}
	return b, nil
}
