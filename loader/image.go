package loader

import (
	"cmp"
	"debug/elf"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
)

// Options tunes Load. The zero value is ready to use.
type Options struct {
	// Near asks for the image to be mapped close to this address, so that
	// PC-relative references to host symbols around it stay in range
	// without stubs. It is a hint; 0 lets the kernel choose.
	Near uintptr
	// Pool, when set, supplies the image's memory and takes it back on
	// Close. Images placed with Near or needing the low 2 GiB bypass it.
	Pool *Pool
}

// Image is a loaded, linked object in executable memory. Its methods are
// safe for concurrent use; Close must not race with running its code.
type Image struct {
	arch    elf.Machine
	mem     []byte // the mapping; nil after Close
	base    uintptr
	size    uintptr // len(mem), kept apart so it stays readable after Close
	globals map[string]uintptr
	funcs   []funcSym // sorted by address, for SymbolAt
	sizes   [numSegments]uint64

	pool *Pool // where mem goes on Close, or nil to unmap it

	mu     sync.Mutex  // serialises Close
	closed atomic.Bool // read on every Symbol lookup: no lock there
}

type funcSym struct {
	name       string
	addr, size uintptr
}

// HostMachine is the ELF machine of the running process.
func HostMachine() elf.Machine {
	switch runtime.GOARCH {
	case "amd64":
		return elf.EM_X86_64
	case "arm64":
		return elf.EM_AARCH64
	}
	return elf.EM_NONE
}

// Load maps obj, links it against syms and returns it ready to run. obj
// must be for the host's machine.
func Load(obj []byte, syms SymbolTable) (*Image, error) {
	return LoadWithOptions(obj, syms, Options{})
}

// LoadWithOptions is Load with options.
func LoadWithOptions(obj []byte, syms SymbolTable, opts Options) (*Image, error) {
	o, err := parse(obj)
	if err != nil {
		return nil, err
	}
	if o.machine != HostMachine() {
		return nil, fmt.Errorf("%w: object is %v, host is %v", ErrMachine, o.machine, HostMachine())
	}
	pg := uint64(os.Getpagesize())
	lay, err := o.plan(pg)
	if err != nil {
		return nil, err
	}
	var mem []byte
	pool := opts.Pool
	if opts.Near != 0 || lay.needLow {
		pool = nil
	}
	if pool != nil {
		mem = pool.get(lay.size)
	}
	if mem == nil {
		if mem, err = mapRW(lay.size, opts.Near, lay.needLow && opts.Near == 0); err != nil {
			return nil, err
		}
	}
	l := &linker{o: o, lay: lay, mem: mem, base: uint64(addrOf(mem))}
	if err := l.link(syms); err != nil {
		unmap(mem)
		return nil, err
	}
	img := newImage(l)
	img.mem = mem
	img.pool = pool
	img.size = uintptr(len(mem))
	if err := img.protect(lay); err != nil {
		unmap(mem)
		return nil, err
	}
	if t := lay.segEnd[segText] - lay.segStart[segText]; t > 0 {
		syncICache(img.base+uintptr(lay.segStart[segText]), uintptr(t))
	}
	return img, nil
}

// checkBase is where Check pretends to map images: inside the low 2 GiB,
// where even non-PIC small-model x86_64 code may live.
const checkBase = 0x40000000

// Check links obj, for either supported machine, into scratch memory at a
// made-up base address, without mapping anything executable. It reports
// the error Load would return for anything but placement: host symbols
// from syms are taken at face value, and the image is placed at
// 0x40000000.
func Check(obj []byte, syms SymbolTable) error {
	o, err := parse(obj)
	if err != nil {
		return err
	}
	lay, err := o.plan(4096)
	if err != nil {
		return err
	}
	// Scratch memory from mmap: pages nobody writes (.bss) cost nothing.
	mem, err := mapRW(lay.size, 0, false)
	if err != nil {
		return err
	}
	defer unmap(mem)
	l := &linker{o: o, lay: lay, mem: mem, base: checkBase}
	return l.link(syms)
}

func newImage(l *linker) *Image {
	img := &Image{arch: l.o.machine, base: uintptr(l.base)}
	for seg := segText; seg < numSegments; seg++ {
		img.sizes[seg] = l.lay.segEnd[seg] - l.lay.segStart[seg]
	}
	// Count first: sizing the map and slice once is a measurable part of
	// loading a small kernel.
	nglobals, nfuncs := 0, 0
	for i := 1; i < len(l.o.syms); i++ {
		g, f := l.exported(i)
		if g {
			nglobals++
		}
		if f {
			nfuncs++
		}
	}
	img.globals = make(map[string]uintptr, nglobals)
	img.funcs = make([]funcSym, 0, nfuncs)
	for i := 1; i < len(l.o.syms); i++ {
		g, f := l.exported(i)
		s := &l.o.syms[i]
		a := uintptr(l.addrs[i])
		if g {
			img.globals[s.name] = a
		}
		if f {
			img.funcs = append(img.funcs, funcSym{name: s.name, addr: a, size: uintptr(s.size)})
		}
	}
	slices.SortFunc(img.funcs, func(a, b funcSym) int { return cmp.Compare(a.addr, b.addr) })
	return img
}

// exported reports whether symbol i is a global the image exports and
// whether it is a function SymbolAt should know.
func (l *linker) exported(i int) (global, fn bool) {
	s := &l.o.syms[i]
	if s.name == "" || s.shndx == elf.SHN_UNDEF || s.shndx == elf.SHN_ABS {
		return false, false
	}
	if s.shndx < elf.SHN_LORESERVE && l.o.sections[s.shndx].seg == segNone {
		return false, false
	}
	switch elf.ST_BIND(s.info) {
	case elf.STB_GLOBAL, elf.STB_WEAK:
		v := elf.ST_VISIBILITY(s.other)
		global = v != elf.STV_HIDDEN && v != elf.STV_INTERNAL
	}
	return global, elf.ST_TYPE(s.info) == elf.STT_FUNC
}

// Machine is the image's ELF machine.
func (img *Image) Machine() elf.Machine { return img.arch }

// Base is the address of the first byte of the image.
func (img *Image) Base() uintptr { return img.base }

// Size is the number of bytes the image maps.
func (img *Image) Size() int { return int(img.size) }

// SegmentSizes reports the bytes used by code (with stubs), read-only data
// (with the GOT) and writable data.
func (img *Image) SegmentSizes() (text, rodata, data uint64) {
	return img.sizes[segText], img.sizes[segRelro], img.sizes[segData]
}

// Symbol returns the address of a global symbol the image defines.
func (img *Image) Symbol(name string) (uintptr, error) {
	if img.closed.Load() {
		return 0, ErrClosed
	}
	a, ok := img.globals[name]
	if !ok {
		return 0, fmt.Errorf("%w: %q", ErrNoSymbol, name)
	}
	return a, nil
}

// Lookup implements SymbolTable with the image's global symbols, so one
// image can be linked against another.
func (img *Image) Lookup(name string) (uintptr, bool) {
	if img.closed.Load() {
		return 0, false
	}
	a, ok := img.globals[name]
	return a, ok
}

// Globals lists the names of the image's global symbols, sorted.
func (img *Image) Globals() []string {
	names := make([]string, 0, len(img.globals))
	for n := range img.globals {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Contains reports whether pc lies inside the image.
func (img *Image) Contains(pc uintptr) bool {
	return pc >= img.base && pc-img.base < img.size
}

// SymbolAt names the function containing pc, for fault reports.
func (img *Image) SymbolAt(pc uintptr) (name string, off uintptr, ok bool) {
	if !img.Contains(pc) {
		return "", 0, false
	}
	i := sort.Search(len(img.funcs), func(i int) bool { return img.funcs[i].addr > pc }) - 1
	if i < 0 {
		return "", 0, false
	}
	f := img.funcs[i]
	if f.size != 0 && pc-f.addr >= f.size {
		return "", 0, false
	}
	return f.name, pc - f.addr, true
}

// Close unmaps the image. Nothing may run its code any more. Close is
// idempotent.
func (img *Image) Close() error {
	img.mu.Lock()
	defer img.mu.Unlock()
	if img.closed.Load() {
		return nil
	}
	img.closed.Store(true)
	mem := img.mem
	img.mem = nil
	if img.pool != nil {
		return img.pool.put(mem)
	}
	return unmap(mem)
}
