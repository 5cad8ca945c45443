package hostrt

import (
	"debug/elf"
	"testing"
	"unsafe"

	"github.com/bcship/bcship/loader"
)

func TestCtxLayout(t *testing.T) {
	var c Ctx
	for _, f := range []struct {
		name      string
		got, want uintptr
	}{
		{"Outbox", unsafe.Offsetof(c.Outbox), CtxOutboxOffset},
		{"OutboxCap", unsafe.Offsetof(c.OutboxCap), CtxOutboxCapOffset},
		{"OutboxLen", unsafe.Offsetof(c.OutboxLen), CtxOutboxLenOffset},
		{"Dropped", unsafe.Offsetof(c.Dropped), CtxDroppedOffset},
		{"Regions", unsafe.Offsetof(c.Regions), CtxRegionsOffset},
		{"NRegions", unsafe.Offsetof(c.NRegions), CtxNRegionsOffset},
		{"Self", unsafe.Offsetof(c.Self), CtxSelfOffset},
		{"Nodes", unsafe.Offsetof(c.Nodes), CtxNodesOffset},
		{"sizeof(Ctx)", unsafe.Sizeof(c), CtxSize},
		{"sizeof(Region)", unsafe.Sizeof(Region{}), RegionSize},
	} {
		if f.got != f.want {
			t.Errorf("%s: offset %d, rt.c has %d", f.name, f.got, f.want)
		}
	}
}

// TestRuntimeSelfContained: the runtime is linked against nothing, so it
// must not import anything. clang turning a copy loop into a call to
// memcpy inside memcpy would show up here.
func TestRuntimeSelfContained(t *testing.T) {
	for _, m := range []elf.Machine{elf.EM_X86_64, elf.EM_AARCH64} {
		obj, err := Object(m)
		if err != nil {
			t.Fatal(err)
		}
		info, err := loader.Inspect(obj)
		if err != nil {
			t.Fatal(err)
		}
		if len(info.Undefined) > 0 {
			t.Errorf("%v runtime imports %v", m, info.Undefined)
		}
		wants := []string{"memcpy", "memmove", "memset", "memcmp", "__udivti3", "__umodti3",
			"__divti3", "__modti3", "bc_region", "bc_reply", "bc_forward", "bc_log", "bc_self",
			// binary128 soft-float (csrc/softfp.c)
			"__addtf3", "__subtf3", "__multf3", "__divtf3", "__negtf2",
			"__eqtf2", "__netf2", "__lttf2", "__letf2", "__gttf2", "__getf2", "__unordtf2", "__cmptf2",
			"__extendsftf2", "__extenddftf2", "__trunctfsf2", "__trunctfdf2",
			"__fixtfsi", "__fixtfdi", "__fixtfti", "__fixunstfsi", "__fixunstfdi", "__fixunstfti",
			"__floatsitf", "__floatditf", "__floattitf", "__floatunsitf", "__floatunditf", "__floatuntitf",
			"__extendhftf2", "__trunctfhf2", "__powitf2", "__multc3", "__divtc3"}
		for _, want := range wants {
			found := false
			for _, g := range info.Globals {
				found = found || g == want
			}
			if !found {
				t.Errorf("%v runtime lacks %s", m, want)
			}
		}
	}
}

// TestRuntimeSameSymbols: Table offers the host runtime's names for
// checking objects of either architecture, so both runtimes must define
// the same globals.
func TestRuntimeSameSymbols(t *testing.T) {
	defined := map[elf.Machine]map[string]bool{}
	for _, m := range []elf.Machine{elf.EM_X86_64, elf.EM_AARCH64} {
		obj, err := Object(m)
		if err != nil {
			t.Fatal(err)
		}
		names, err := loader.DefinedGlobals(obj)
		if err != nil {
			t.Fatal(err)
		}
		defined[m] = map[string]bool{}
		for _, n := range names {
			defined[m][n] = true
		}
	}
	for _, p := range [][2]elf.Machine{{elf.EM_X86_64, elf.EM_AARCH64}, {elf.EM_AARCH64, elf.EM_X86_64}} {
		for n := range defined[p[0]] {
			if !defined[p[1]][n] {
				t.Errorf("%s is defined for %v but not for %v", n, p[0], p[1])
			}
		}
	}
}
