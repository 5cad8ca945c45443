package loader_test

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bcship/bcship/internal/hostrt"
	"github.com/bcship/bcship/internal/testobj"
	"github.com/bcship/bcship/loader"
	"golang.org/x/sys/unix"
)

const testdata = "../testdata"

// hostArch is the testobj name of the running architecture.
func hostArch(t testing.TB) string {
	switch loader.HostMachine() {
	case elf.EM_X86_64:
		return "x86_64"
	case elf.EM_AARCH64:
		return "aarch64"
	}
	t.Fatalf("no test objects for this architecture")
	return ""
}

func readObj(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdata, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func variants(src, arch string) []testobj.Variant {
	var vs []testobj.Variant
	for _, v := range testobj.Matrix() {
		if v.Src == src && (arch == "" || v.Arch == arch) {
			vs = append(vs, v)
		}
	}
	return vs
}

// checkTable resolves everything a test object may import, at made-up
// addresses, for loader.Check. Host data sits just below where Check places
// images (0x40000000), where non-PIC code of either machine reaches it
// (x86_64 small model: low 2 GiB; aarch64 tiny model: ±1 MiB); host
// functions are far away, so calls to them need stubs.
func checkTable(t testing.TB) loader.Symbols {
	tab, err := hostrt.Table()
	if err != nil {
		t.Fatal(err)
	}
	tab["host_mix"] = 0x7f2000000000
	tab["b_scale"] = 0x7f2000000000
	const data = 0x40000000 - 0x10000
	tab["host_table"] = data
	tab["b_state"] = data + 0x100
	return tab
}

// TestCheckEveryObject links every committed object of both architectures,
// whatever the host, so relocation arithmetic for the other architecture
// is exercised too.
func TestCheckEveryObject(t *testing.T) {
	for _, v := range testobj.Matrix() {
		if strings.HasPrefix(v.Src, "bad_") {
			continue
		}
		t.Run(v.Name(), func(t *testing.T) {
			if err := loader.Check(readObj(t, v.Name()), checkTable(t)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestRelocationCoverage makes sure the matrix really produces the
// relocation types the loader claims to handle, so a silent change in the
// compiler's output cannot leave a code path untested.
func TestRelocationCoverage(t *testing.T) {
	seen := map[string]bool{}
	for _, v := range testobj.Matrix() {
		if strings.HasPrefix(v.Src, "bad_") {
			continue
		}
		info, err := loader.Inspect(readObj(t, v.Name()))
		if err != nil {
			t.Fatalf("%s: %v", v.Name(), err)
		}
		for r := range info.Relocations {
			seen[r] = true
		}
	}
	for _, want := range []string{
		"R_X86_64_64", "R_X86_64_PC32", "R_X86_64_PLT32", "R_X86_64_REX_GOTPCRELX",
		"R_X86_64_32", "R_X86_64_32S", "R_X86_64_GOT64", "R_X86_64_GOTPC64", "R_X86_64_GOTOFF64",
		"R_X86_64_GOTPC32",
		"R_AARCH64_ABS64", "R_AARCH64_PREL32", "R_AARCH64_ADR_PREL_PG_HI21", "R_AARCH64_ADD_ABS_LO12_NC",
		"R_AARCH64_LDST8_ABS_LO12_NC", "R_AARCH64_LDST32_ABS_LO12_NC", "R_AARCH64_LDST64_ABS_LO12_NC",
		"R_AARCH64_LDST128_ABS_LO12_NC", "R_AARCH64_CALL26", "R_AARCH64_ADR_GOT_PAGE",
		"R_AARCH64_LD64_GOT_LO12_NC", "R_AARCH64_ADR_PREL_LO21", "R_AARCH64_LD_PREL_LO19",
		"R_AARCH64_GOT_LD_PREL19", "R_AARCH64_MOVW_UABS_G0_NC", "R_AARCH64_MOVW_UABS_G1_NC",
		"R_AARCH64_MOVW_UABS_G2_NC", "R_AARCH64_MOVW_UABS_G3",
	} {
		if !seen[want] {
			t.Errorf("no test object exercises %s", want)
		}
	}
	t.Logf("relocation types seen: %d", len(seen))
}

func TestInspect(t *testing.T) {
	info, err := loader.Inspect(readObj(t, "loadtest.aarch64.O2.pic.small.o"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Machine != elf.EM_AARCH64 {
		t.Errorf("machine %v", info.Machine)
	}
	want := []string{"t_arith", "t_bigstruct", "t_data", "t_div128", "t_float", "t_fptable",
		"t_host", "t_lazy", "t_memcpy", "t_reltab", "t_strings", "t_switch"}
	if strings.Join(info.Entries, ",") != strings.Join(want, ",") {
		t.Errorf("entries %v, want %v", info.Entries, want)
	}
	for _, u := range []string{"host_mix", "host_table", "memcpy", "__udivti3"} {
		found := false
		for _, n := range info.Undefined {
			found = found || n == u
		}
		if !found {
			t.Errorf("undefined symbols %v lack %s", info.Undefined, u)
		}
	}
}

// corrupt returns a copy of obj with f applied.
func corrupt(obj []byte, f func(b []byte)) []byte {
	b := append([]byte(nil), obj...)
	f(b)
	return b
}

// firstRela finds the file offset of the first RELA entry patching a
// loaded section.
func firstRela(t *testing.T, obj []byte) int {
	f, err := elf.NewFile(strings.NewReader(string(obj)))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range f.Sections {
		if s.Type == elf.SHT_RELA && f.Sections[s.Info].Flags&elf.SHF_ALLOC != 0 && s.Size > 0 {
			return int(s.Offset)
		}
	}
	t.Fatal("no relocations")
	return 0
}

// sectionHeader returns the offset of the header of section name in obj.
func sectionHeader(t *testing.T, obj []byte, name string) int {
	f, err := elf.NewFile(strings.NewReader(string(obj)))
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range f.Sections {
		if s.Name == name {
			return int(binary.LittleEndian.Uint64(obj[0x28:])) + i*64
		}
	}
	t.Fatalf("no section %s", name)
	return 0
}

func TestErrors(t *testing.T) {
	arch := hostArch(t)
	good := readObj(t, "loadtest."+arch+".O2.nopic.small.o")
	tab := checkTable(t)
	le := binary.LittleEndian
	for _, tc := range []struct {
		name string
		obj  []byte
		syms loader.SymbolTable
		want error
	}{
		{"empty", nil, tab, loader.ErrFormat},
		{"not ELF", []byte(strings.Repeat("x", 100)), tab, loader.ErrFormat},
		{"truncated", good[:200], tab, loader.ErrFormat},
		{"truncated sections", good[:len(good)/2], tab, loader.ErrFormat},
		{"executable", corrupt(good, func(b []byte) { le.PutUint16(b[16:], uint16(elf.ET_EXEC)) }), tab, loader.ErrNotRelocatable},
		{"shared object", corrupt(good, func(b []byte) { le.PutUint16(b[16:], uint16(elf.ET_DYN)) }), tab, loader.ErrNotRelocatable},
		{"wrong machine", corrupt(good, func(b []byte) { le.PutUint16(b[18:], uint16(elf.EM_RISCV)) }), tab, loader.ErrMachine},
		{"32-bit", corrupt(good, func(b []byte) { b[elf.EI_CLASS] = byte(elf.ELFCLASS32) }), tab, loader.ErrMachine},
		{"unknown relocation", corrupt(good, func(b []byte) {
			off := firstRela(t, good)
			le.PutUint32(b[off+8:], 0xfff0)
		}), tab, loader.ErrUnknownRelocation},
		{"relocation symbol out of range", corrupt(good, func(b []byte) {
			off := firstRela(t, good)
			le.PutUint32(b[off+12:], 0xffffff)
		}), tab, loader.ErrFormat},
		{"relocation offset out of range", corrupt(good, func(b []byte) {
			off := firstRela(t, good)
			le.PutUint64(b[off:], 1<<40)
		}), tab, loader.ErrFormat},
		// A NOBITS size is not bounded by the file: one that wrapped the
		// layout's running total made an image smaller than its .data
		// (found by FuzzLoad: a panic in link).
		{"bss wrapping the layout", corrupt(good, func(b []byte) {
			le.PutUint64(b[sectionHeader(t, good, ".bss")+0x20:], ^uint64(4095)) // 2^64 - 4096
		}), tab, loader.ErrFormat},
		{"unresolved", good, loader.Symbols{}, loader.ErrUnresolved},
		{"TLS", readObj(t, "bad_tls."+arch+".O2.nopic.small.o"), tab, loader.ErrTLS},
		{"constructor", readObj(t, "bad_ctor."+arch+".O2.nopic.small.o"), tab, loader.ErrStaticConstructor},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, err := loader.Load(tc.obj, tc.syms)
			if err == nil {
				img.Close()
				t.Fatal("loaded")
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %q does not match %q", err, tc.want)
			}
			if err2 := loader.Check(tc.obj, tc.syms); !errors.Is(err2, tc.want) {
				t.Fatalf("Check: error %v does not match %q", err2, tc.want)
			}
		})
	}
}

func TestUnresolvedNamesEverySymbol(t *testing.T) {
	arch := hostArch(t)
	_, err := loader.Load(readObj(t, "loadtest."+arch+".O2.pic.small.o"), loader.Symbols{"memcpy": 1, "memset": 1})
	var ue *loader.UnresolvedError
	if !errors.As(err, &ue) {
		t.Fatalf("error %v is not an UnresolvedError", err)
	}
	got := strings.Join(ue.Names, ",")
	for _, n := range []string{"host_mix", "host_table", "memcmp"} {
		if !strings.Contains(got, n) {
			t.Errorf("unresolved names %q lack %s", got, n)
		}
	}
	if strings.Contains(got, "memcpy") {
		t.Errorf("unresolved names %q include a resolved symbol", got)
	}
	if !strings.Contains(err.Error(), "host_mix") {
		t.Errorf("message %q does not name the symbol", err)
	}
}

func TestUnknownRelocationIsNamed(t *testing.T) {
	good := readObj(t, "loadtest."+hostArch(t)+".O2.nopic.small.o")
	bad := corrupt(good, func(b []byte) {
		binary.LittleEndian.PutUint32(b[firstRela(t, good)+8:], 0xfff0)
	})
	err := loader.Check(bad, checkTable(t))
	var re *loader.RelocationError
	if !errors.As(err, &re) {
		t.Fatalf("error %v is not a RelocationError", err)
	}
	if !strings.Contains(err.Error(), re.Type) || re.Section == "" {
		t.Errorf("error %q does not name type and section", err)
	}
}

func TestSymbol(t *testing.T) {
	img := mustLoad(t, readObj(t, "multi_b."+hostArch(t)+".O2.pic.small.o"), nil)
	if _, err := img.Symbol("b_scale"); err != nil {
		t.Fatal(err)
	}
	if _, err := img.Symbol("nope"); !errors.Is(err, loader.ErrNoSymbol) {
		t.Fatalf("missing symbol: %v", err)
	}
	a, _ := img.Symbol("b_scale")
	if name, off, ok := img.SymbolAt(a + 4); !ok || name != "b_scale" || off != 4 {
		t.Errorf("SymbolAt = %q+%d %v", name, off, ok)
	}
	if err := img.Close(); err != nil {
		t.Fatal(err)
	}
	if err := img.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if _, err := img.Symbol("b_scale"); !errors.Is(err, loader.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

// TestNoWritableExecutableMapping loads every host object and checks that
// the process never has a page that is both writable and executable.
func TestNoWritableExecutableMapping(t *testing.T) {
	env := newRunEnv(t)
	for _, v := range variants("loadtest", hostArch(t)) {
		img := env.load(t, readObj(t, v.Name()), env.syms, 0)
		text, ro, data := img.SegmentSizes()
		if text == 0 || ro == 0 || data == 0 {
			t.Errorf("%s: segments %d/%d/%d, want all non-empty", v.Name(), text, ro, data)
		}
		maps, err := os.ReadFile("/proc/self/maps")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(maps), "\n") {
			f := strings.Fields(line)
			if len(f) > 1 && strings.HasPrefix(f[1], "rwx") {
				t.Errorf("%s: writable and executable mapping: %s", v.Name(), line)
			}
		}
		img.Close()
	}
}

func mustLoad(t testing.TB, obj []byte, syms loader.SymbolTable) *loader.Image {
	t.Helper()
	img, err := loader.Load(obj, syms)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { img.Close() })
	return img
}

// BenchmarkLoad4K loads, links and protects a ~4 KiB kernel (the PIC -Os
// build of loadtest.c) the way a node does, with a Pool recycling the
// memory of evicted images, and closes it again. Fresh maps new memory each
// time. Each reports its ratio to the system calls it cannot avoid, timed
// in the same run: two mprotects per pooled cycle (code+rodata RX on load,
// back to RW on Close); mmap, a write per page, one mprotect and munmap per
// fresh one.
func BenchmarkLoad4K(b *testing.B) {
	obj := readObj(b, "loadtest."+hostArch(b)+".Os.pic.small.o")
	env := newRunEnv(b)
	info, err := loader.Inspect(obj)
	if err != nil {
		b.Fatal(err)
	}
	img, err := loader.Load(obj, env.syms)
	if err != nil {
		b.Fatal(err)
	}
	size := img.Size()
	img.Close()
	for _, bc := range []struct {
		name  string
		pool  *loader.Pool
		floor func(size int) float64
	}{{"Pooled", loader.NewPool(1 << 20), pooledFloorNs}, {"Fresh", nil, freshFloorNs}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				img, err := loader.LoadWithOptions(obj, env.syms, loader.Options{Pool: bc.pool})
				if err != nil {
					b.Fatal(err)
				}
				img.Close()
			}
			per := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(per/bc.floor(size), "x-syscall-floor")
			b.ReportMetric(float64(info.Text+info.ROData+info.Data), "image-bytes")
		})
		if bc.pool != nil {
			bc.pool.Close()
		}
	}
}

// pooledFloorNs times the two mprotects of a pooled load and close.
func pooledFloorNs(size int) float64 {
	m, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		panic(err)
	}
	defer unix.Munmap(m)
	pg := os.Getpagesize()
	const n = 20000
	t0 := time.Now()
	for i := 0; i < n; i++ {
		unix.Mprotect(m[:2*pg], unix.PROT_READ|unix.PROT_EXEC)
		unix.Mprotect(m, unix.PROT_READ|unix.PROT_WRITE)
	}
	return float64(time.Since(t0).Nanoseconds()) / n
}

// freshFloorNs times mmap, one write per page, one mprotect and munmap.
func freshFloorNs(size int) float64 {
	pg := os.Getpagesize()
	const n = 10000
	t0 := time.Now()
	for i := 0; i < n; i++ {
		m, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			panic(err)
		}
		for p := 0; p < size; p += pg {
			m[p] = 1
		}
		unix.Mprotect(m[:2*pg], unix.PROT_READ|unix.PROT_EXEC)
		unix.Munmap(m)
	}
	return float64(time.Since(t0).Nanoseconds()) / n
}
