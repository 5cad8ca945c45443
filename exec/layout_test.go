//go:build linux && (amd64 || arm64)

package exec

import (
	"testing"
	"unsafe"
)

func Test_slotOffsets(t *testing.T) {
	var s slot
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"goSP", unsafe.Offsetof(s.goSP), slotGoSPOffset},
		{"g", unsafe.Offsetof(s.g), slotGOffset},
		{"fp", unsafe.Offsetof(s.fp), slotFPOffset},
		{"lr", unsafe.Offsetof(s.lr), slotLROffset},
		{"status", unsafe.Offsetof(s.status), slotStatusOffset},
		{"signal", unsafe.Offsetof(s.signal), slotSignalOffset},
		{"code", unsafe.Offsetof(s.code), slotCodeOffset},
		{"pc", unsafe.Offsetof(s.pc), slotPCOffset},
		{"addr", unsafe.Offsetof(s.addr), slotAddrOffset},
		{"token", unsafe.Offsetof(s.token), slotTokenOffset},
		{"tmp", unsafe.Offsetof(s.tmp), slotTmpOffset},
		{"tls", unsafe.Offsetof(s.tls), slotTLSOffset},
		{"size", unsafe.Sizeof(s), slotSize},
	} {
		if c.got != c.want {
			t.Errorf("slot.%s: %d, constant says %d", c.name, c.got, c.want)
		}
	}
	if slotSize%16 != 0 {
		t.Error("slotSize must keep the native SP 16-byte aligned")
	}
}

func Test_regionOffsets(t *testing.T) {
	var r region
	if unsafe.Offsetof(r.base) != regionBaseOffset || unsafe.Offsetof(r.end) != regionEndOffset ||
		unsafe.Offsetof(r.shift) != regionShiftOffset || unsafe.Offsetof(r.stride) != regionStrideOffset ||
		unsafe.Sizeof(r) != regionSize {
		t.Errorf("region layout: base %d end %d shift %d size %d", unsafe.Offsetof(r.base),
			unsafe.Offsetof(r.end), unsafe.Offsetof(r.shift), unsafe.Sizeof(r))
	}
	if maxRegions<<12 > 1<<(tokenMagicShift-tokenIDShift) || MaxStacksLimit > 1<<12 {
		t.Error("stack identity does not fit the token")
	}
}

func Test_kernelABILayouts(t *testing.T) {
	var sa sigactiont
	if unsafe.Sizeof(sa) != 32 || unsafe.Offsetof(sa.flags) != 8 || unsafe.Offsetof(sa.restorer) != 16 || unsafe.Offsetof(sa.mask) != 24 {
		t.Error("sigactiont layout")
	}
	var si siginfo
	if unsafe.Sizeof(si) != siSize || unsafe.Offsetof(si.code) != siCodeOffset || unsafe.Offsetof(si.pid) != siPidOffset ||
		unsafe.Offsetof(si.uid) != siUIDOffset || unsafe.Offsetof(si.value) != siValueOffset {
		t.Error("siginfo layout")
	}
	// The ucontext offsets are checked by behaviour: TestFaults compares
	// the PC the handler read from the context with the known faulting
	// instruction, and the recovery it wrote back is what every fault
	// test survives.
}
