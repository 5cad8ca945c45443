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
		for _, want := range []string{"memcpy", "memmove", "memset", "memcmp", "__udivti3", "__umodti3",
			"__divti3", "__modti3", "bc_region", "bc_reply", "bc_forward", "bc_log", "bc_self"} {
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
