package loader_test

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"math/big"
	"runtime"
	"testing"
	"unsafe"

	"github.com/bcship/bcship/exec"
	"github.com/bcship/bcship/internal/hostrt"
	"github.com/bcship/bcship/loader"

	"github.com/cespare/xxhash/v2"
	"github.com/zeebo/xxh3"
	"golang.org/x/sys/unix"
)

// runEnv is a host for test kernels: the runtime, a "host" object mapped
// far from everything else (so calls to it need stubs), host data in an
// arena at a low address, and an executor.
//
// Kernels are mapped next to the arena (Near): non-PIC code reaches host
// data only within ±2 GiB of address 0 (x86_64 small model), ±4 GiB
// (aarch64 ADRP) or ±1 MiB (aarch64 tiny model), and that is where a node
// would have to put data such code references directly.
type runEnv struct {
	rt    *hostrt.Runtime
	host  *loader.Image
	arena []byte
	syms  loader.SymbolTable
	ex    *exec.Executor
}

// Addresses: the host object well beyond ±4 GiB of anything else, the
// arena at 1 GiB (inside the low 2 GiB, clear of the Go binary and heap).
const (
	farAddress   = 0x100000000000
	arenaAddress = 0x40000000
	arenaSize    = 16 << 20
	arenaData    = 64 << 10 // bytes kept mapped for host data
	slotSize     = 1 << 20  // kernels load at arena+arenaData+i*slotSize
)

var hostTable = func() [16]uint64 {
	var t [16]uint64
	for i := range t {
		t[i] = uint64(i)*0x1234567 + 99
	}
	return t
}()

func newRunEnv(t testing.TB) *runEnv {
	t.Helper()
	rt, err := hostrt.Load()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	host, err := loader.LoadWithOptions(readObj(t, "hostfn."+hostArch(t)+".O2.nopic.small.o"), rt, loader.Options{Near: farAddress})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Close() })
	ex, err := exec.New(exec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Close() })
	arena := mapArena(t)
	for i, v := range hostTable {
		binary.LittleEndian.PutUint64(arena[8*i:], v)
	}
	env := &runEnv{rt: rt, host: host, arena: arena, ex: ex}
	env.syms = loader.Chain{rt, host, loader.Symbols{"host_table": uintptr(unsafe.Pointer(&arena[0]))}}
	return env
}

// mapArena maps the host-data arena at arenaAddress and leaves the rest of
// its range free for kernels to be mapped into.
func mapArena(t testing.TB) []byte {
	p, err := unix.MmapPtr(-1, 0, unsafe.Add(nil, arenaAddress), arenaSize,
		unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	if uintptr(p) != arenaAddress {
		unix.MunmapPtr(p, arenaSize)
		t.Fatalf("arena mapped at %#x, not %#x: the address space is unusually crowded", p, arenaAddress)
	}
	if err := unix.MunmapPtr(unsafe.Add(p, arenaData), arenaSize-arenaData); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.MunmapPtr(p, arenaData) })
	return unsafe.Slice((*byte)(p), arenaData)
}

// load maps obj into kernel slot i next to the arena.
func (env *runEnv) load(t testing.TB, obj []byte, syms loader.SymbolTable, slot int) *loader.Image {
	t.Helper()
	near := uintptr(arenaAddress + arenaData + slot*slotSize)
	img, err := loader.LoadWithOptions(obj, syms, loader.Options{Near: near})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { img.Close() })
	if img.Base() != near {
		t.Fatalf("image mapped at %#x, not at the hint %#x", img.Base(), near)
	}
	return img
}

// call runs entry of img with args laid out as uint64s.
func (env *runEnv) call(t testing.TB, img *loader.Image, entry string, args ...uint64) int64 {
	t.Helper()
	buf := make([]byte, 8*len(args)+8)
	for i, a := range args {
		binary.LittleEndian.PutUint64(buf[8*i:], a)
	}
	return env.callBytes(t, img, entry, buf[:8*len(args)])
}

func (env *runEnv) callBytes(t testing.TB, img *loader.Image, entry string, arg []byte) int64 {
	t.Helper()
	fn, err := img.Symbol(entry)
	if err != nil {
		t.Fatal(err)
	}
	p := unsafe.Pointer(unsafe.SliceData(append(arg[:len(arg):len(arg)], 0)))
	var c hostrt.Ctx
	r, err := env.ex.Call(context.Background(), fn, unsafe.Pointer(&c), p, uint64(len(arg)))
	runtime.KeepAlive(p)
	runtime.KeepAlive(&c)
	if err != nil {
		t.Fatalf("%s: %v", entry, err)
	}
	return r
}

// Go references for the kernels of loadtest.c.

func refArith(a, b int64) int64 { return a*7 - b/3 + (a^b)%11 + (a << 3) - (b >> 2) }

func refSwitch(n uint64) int64 {
	tab := []int64{11, 23, 37, 41, 53, 67, 79, 83, 97, 101, 113, 127, -1}
	var s int64
	for i := uint64(0); i < n; i++ {
		s = s*3 + tab[i%13]
	}
	return s
}

func refFPTable(acc int64, n uint64) int64 {
	for i := uint64(0); i < n; i++ {
		v := int64(i) + 1
		switch i & 3 {
		case 0:
			acc += v
		case 1:
			acc -= v
		case 2:
			acc *= v
		case 3:
			acc ^= v
		}
	}
	return acc
}

func refMemcpy(seed, n uint64) int64 {
	var src, dst [256]byte
	for i := range src {
		src[i] = byte(uint64(i)*7 + seed)
	}
	var sum uint64
	for l := uint64(1); l <= n && l <= 256; l++ {
		copy(dst[:], src[256-l:])
		sum = sum*31 + uint64(dst[l-1]) + uint64(dst[0])
	}
	cmp := int64(0)
	for _, b := range src {
		if b != 0 {
			cmp = 1
			break
		}
	}
	return int64(sum) + cmp
}

func refFloat(a, n uint64) int64 {
	x := float64(a) / 8.0
	f := float32(1.5)
	acc := 0.25
	for i := uint64(0); i < n; i++ {
		// Explicit conversions stop Go from fusing multiply-adds, as the
		// C side's FP_CONTRACT OFF does.
		acc = float64(acc*1.0000001) + x/(float64(i)+1.5)
		f = float32(f*0.75) + 0.125
	}
	return int64(acc*1000.0) + int64(f*1000.0)
}

func refHostMix(a, b uint64) uint64 {
	a ^= b + 0x9e3779b97f4a7c15 + (a << 6) + (a >> 2)
	return a * 0xff51afd7ed558ccd
}

func refHost(h uint64) int64 {
	for _, v := range hostTable {
		h = refHostMix(h, v)
	}
	return int64(h)
}

// to128 interprets hi:lo as a signed 128-bit integer.
func to128(hi, lo uint64, signed bool) *big.Int {
	v := new(big.Int).Lsh(new(big.Int).SetUint64(hi), 64)
	v.Or(v, new(big.Int).SetUint64(lo))
	if signed && hi>>63 == 1 {
		v.Sub(v, new(big.Int).Lsh(big.NewInt(1), 128))
	}
	return v
}

// words returns the low and high 64 bits of v in two's complement.
func words(v *big.Int) (lo, hi uint64) {
	m := new(big.Int).Lsh(big.NewInt(1), 128)
	u := new(big.Int).Mod(v, m)
	lo = new(big.Int).And(u, new(big.Int).SetUint64(^uint64(0))).Uint64()
	hi = new(big.Int).Rsh(u, 64).Uint64()
	return lo, hi
}

func refDiv128(ahi, alo, bhi, blo uint64) int64 {
	a, b := to128(ahi, alo, false), to128(bhi, blo, false)
	q, r := new(big.Int).QuoRem(a, b, new(big.Int))
	sa := to128(ahi, alo, true)
	nb := new(big.Int).Neg(b)
	nblo, nbhi := words(nb)
	sb := to128(nbhi, nblo, true)
	sq, sr := new(big.Int).QuoRem(sa, sb, new(big.Int))
	ql, qh := words(q)
	rl, rh := words(r)
	sql, sqh := words(sq)
	srl, srh := words(sr)
	return int64(ql ^ qh*3 ^ rl*5 ^ rh*7 ^ sql*11 ^ sqh*13 ^ srl*17 ^ srh*19)
}

func refBigStruct(seed uint64) int64 {
	sum := func(v []uint64, tail []byte) uint64 {
		var s uint64
		for i, x := range v {
			s ^= x + uint64(i)
		}
		for _, b := range tail {
			s += uint64(b)
		}
		return s
	}
	v := make([]uint64, 160)
	for i := range v {
		v[i] = seed * uint64(i+1)
	}
	tail := make([]byte, 13)
	for i := range tail {
		tail[i] = byte(seed + uint64(i))
	}
	a := sum(v, tail)
	v[7] = 0
	return int64(a*3 + sum(v, tail))
}

func refStrings(k uint64) int64 {
	names := []string{"alpha", "beta", "gamma", "delta"}
	var s int64
	for i := uint64(0); i < 4; i++ {
		for _, c := range []byte(names[(i+k)&3]) {
			s = s*131 + int64(c)
		}
	}
	return s
}

// TestRunLoadtest loads every variant of loadtest.c built for the host and
// runs each of its kernels against the Go references.
func TestRunLoadtest(t *testing.T) {
	env := newRunEnv(t)
	far := false
	for _, v := range variants("loadtest", hostArch(t)) {
		t.Run(v.Name(), func(t *testing.T) {
			img := env.load(t, readObj(t, v.Name()), env.syms, 0)
			d := int64(img.Base()) - int64(env.host.Base())
			if d < -(1<<32) || d > 1<<32 {
				far = true
			}
			check := func(name string, got, want int64) {
				t.Helper()
				if got != want {
					t.Errorf("%s = %d, want %d", name, got, want)
				}
			}
			check("t_arith", env.call(t, img, "t_arith", 1234567, 89), refArith(1234567, 89))
			check("t_arith neg", env.call(t, img, "t_arith", uint64(1)<<56, ^uint64(999)), refArith(1<<56, -1000))
			check("t_switch", env.call(t, img, "t_switch", 30), refSwitch(30))
			check("t_fptable", env.call(t, img, "t_fptable", 5, 12), refFPTable(5, 12))
			// .data and .bss keep their state between calls.
			check("t_data 1", env.call(t, img, "t_data", 5), 1005*1000+1+1005%7)
			check("t_data 2", env.call(t, img, "t_data", 7), 1012*1000+2+1012%7)
			check("t_memcpy", env.call(t, img, "t_memcpy", 3, 200), refMemcpy(3, 200))
			check("t_float", env.call(t, img, "t_float", 77, 50), refFloat(77, 50))
			check("t_host", env.call(t, img, "t_host", 42), refHost(42))
			for _, a := range [][4]uint64{
				{0, 1000, 0, 7},
				{0x123456789abcdef, 0xfedcba9876543210, 0, 0x1234567},
				{0xffffffffffffffff, 0xfffffffffffffff0, 0x1, 0x3},
				{0x7000000000000000, 5, 0x10, 0xffffffffffffffff},
			} {
				check("t_div128", env.call(t, img, "t_div128", a[0], a[1], a[2], a[3]), refDiv128(a[0], a[1], a[2], a[3]))
			}
			check("t_bigstruct", env.call(t, img, "t_bigstruct", 17), refBigStruct(17))
			msg := []byte("the quick brown fox jumps over the lazy dog")
			check("t_lazy", env.callBytes(t, img, "t_lazy", msg), int64(crc32.ChecksumIEEE(msg)))
			check("t_lazy again", env.callBytes(t, img, "t_lazy", msg[:9]), int64(crc32.ChecksumIEEE(msg[:9])))
			check("t_strings", env.call(t, img, "t_strings", 2), refStrings(2))
			check("t_reltab", env.call(t, img, "t_reltab", 9), 3*100+7*10+5+9)
		})
	}
	if !far {
		t.Errorf("no image was mapped beyond ±4 GiB of the host object, so stubs went untested")
	}
}

// TestRunTwoObjects links multi_a.c against a separately loaded multi_b.c.
func TestRunTwoObjects(t *testing.T) {
	env := newRunEnv(t)
	for _, v := range variants("multi_a", hostArch(t)) {
		t.Run(v.Name(), func(t *testing.T) {
			bv := v
			bv.Src = "multi_b"
			b := env.load(t, readObj(t, bv.Name()), env.syms, 0)
			a := env.load(t, readObj(t, v.Name()), loader.Chain{b, env.syms}, 1)
			for i, want := range []int64{10*3 + 41 + 41, 10*3 + 42 + 42} {
				if got := env.call(t, a, "t_multi", 10); got != want {
					t.Errorf("call %d: %d, want %d", i, got, want)
				}
			}
		})
	}
}

// TestRunThirdParty runs xxHash (Debian's libxxhash-dev, compiled
// freestanding) against Go implementations of the same hashes.
func TestRunThirdParty(t *testing.T) {
	env := newRunEnv(t)
	inputs := [][]byte{[]byte("a"), []byte("bcship ships code to data"), make([]byte, 1000)}
	for i := range inputs[2] {
		inputs[2][i] = byte(i * 13)
	}
	for _, v := range variants("xxh", hostArch(t)) {
		t.Run(v.Name(), func(t *testing.T) {
			img := env.load(t, readObj(t, v.Name()), env.syms, 0)
			for _, in := range inputs {
				d := xxhash.NewWithSeed(7)
				d.Write(in)
				if got, want := uint64(env.callBytes(t, img, "t_xxh64", in)), d.Sum64(); got != want {
					t.Errorf("XXH64(%d bytes) = %#x, want %#x", len(in), got, want)
				}
				if got, want := uint64(env.callBytes(t, img, "t_xxh3", in)), xxh3.Hash(in); got != want {
					t.Errorf("XXH3(%d bytes) = %#x, want %#x", len(in), got, want)
				}
			}
		})
	}
}

// TestPoolReuse loads the same kernel twice through a Pool: the second
// image reuses the first one's memory, and starts from a clean .data and
// .bss, as a fresh mapping would.
func TestPoolReuse(t *testing.T) {
	env := newRunEnv(t)
	pool := loader.NewPool(1 << 20)
	defer pool.Close()
	obj := readObj(t, "loadtest."+hostArch(t)+".O2.pic.large.o")
	var bases []uintptr
	for i := 0; i < 3; i++ {
		img, err := loader.LoadWithOptions(obj, env.syms, loader.Options{Pool: pool})
		if err != nil {
			t.Fatal(err)
		}
		bases = append(bases, img.Base())
		if got, want := env.call(t, img, "t_data", 5), int64(1005*1000+1+1005%7); got != want {
			t.Errorf("load %d: t_data = %d, want %d (state left over from a previous image?)", i, got, want)
		}
		if got, want := env.call(t, img, "t_host", 42), refHost(42); got != want {
			t.Errorf("load %d: t_host = %d, want %d", i, got, want)
		}
		if err := img.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if bases[1] != bases[0] || bases[2] != bases[0] {
		t.Errorf("images at %#x: the pool did not reuse the mapping", bases)
	}
}
