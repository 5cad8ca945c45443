package hostrt

import (
	"testing"
	"unsafe"
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
