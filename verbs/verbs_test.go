package verbs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bcship/bcship/verbs"
	"github.com/vishvananda/netlink"
)

// rxeDevice is the rxe device the VM harness (internal/cmd/rxevm) set up;
// without it the test is skipped: `make rxe-test` runs these in the VM.
func rxeDevice(t testing.TB) string {
	t.Helper()
	d := os.Getenv("BCSHIP_RXE")
	if d == "" {
		t.Skip("needs soft-RoCE: run in the VM (make rxe-test)")
	}
	return d
}

func open(t testing.TB, opts *verbs.Options) *verbs.Context {
	t.Helper()
	c, err := verbs.Open(context.Background(), rxeDevice(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestDevices(t *testing.T) {
	name := rxeDevice(t)
	ds, err := verbs.Devices()
	if err != nil {
		t.Fatal(err)
	}
	var d *verbs.DeviceInfo
	for i := range ds {
		if ds[i].Name == name {
			d = &ds[i]
		}
	}
	if d == nil {
		t.Fatalf("%s not in %+v", name, ds)
	}
	if d.Uverbs == "" || len(d.Ports) != 1 || d.Ports[0].State != "ACTIVE" || d.Ports[0].LinkLayer != "Ethernet" {
		t.Fatalf("device %+v", d)
	}
	g, err := verbs.FindRoCEv2GID(name, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !g.GID.Equal(net.IPv4(10, 9, 0, 1)) || g.Netdev != os.Getenv("BCSHIP_RXE_NETDEV") {
		t.Fatalf("gid %+v", g)
	}
	t.Logf("%s: %s, gid %d %v %s", d.Name, d.Uverbs, g.Index, g.GID, g.Type)
}

func TestQuery(t *testing.T) {
	for _, fw := range []bool{false, true} {
		t.Run(fmt.Sprintf("forceWrite=%v", fw), func(t *testing.T) {
			c := open(t, &verbs.Options{ForceWrite: fw})
			if c.UsesWrite() != fw {
				t.Fatalf("UsesWrite %v", c.UsesWrite())
			}
			da, err := c.QueryDevice()
			if err != nil {
				t.Fatal(err)
			}
			if da.MaxQP == 0 || da.MaxCQE == 0 || da.PhysPortCnt != 1 {
				t.Fatalf("device attr %+v", da)
			}
			pa, err := c.QueryPort(1)
			if err != nil {
				t.Fatal(err)
			}
			if pa.State != verbs.PortActive || pa.ActiveMTU == 0 || pa.LinkLayer != 2 {
				t.Fatalf("port attr %+v", pa)
			}
			g, err := verbs.FindRoCEv2GID(c.Device.Name, 1)
			if err != nil {
				t.Fatal(err)
			}
			ge, err := c.QueryGID(1, uint32(g.Index))
			if err != nil {
				t.Fatal(err)
			}
			if !ge.GID.Equal(g.GID) || ge.Type != 2 {
				t.Fatalf("QueryGID %+v, sysfs %+v", ge, g)
			}
			pd, err := c.AllocPD()
			if err != nil {
				t.Fatal(err)
			}
			cq, err := c.CreateCQ(16)
			if err != nil {
				t.Fatal(err)
			}
			if cq.Depth() < 16 {
				t.Fatalf("cq depth %d", cq.Depth())
			}
			for range 2 { // Close is idempotent
				if err := cq.Close(); err != nil {
					t.Fatal(err)
				}
				if err := pd.Close(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// pair is two RC QPs on one device connected to each other, with a
// registered buffer each.
type pair struct {
	ctx        *verbs.Context
	pd         *verbs.PD
	chA, chB   *verbs.CompChannel // newChanPair: the CQs' completion channels
	cqA, cqB   *verbs.CQ
	a, b       *verbs.QP
	mrA, mrB   *verbs.MR
	bufA, bufB []byte
	// serverWakes counts the events latSend's server side waited for.
	serverWakes atomic.Int64
}

func newPair(t testing.TB, bufSize int, depth uint32) *pair {
	t.Helper()
	return newPairSignal(t, bufSize, depth, true, nil)
}

// newPairSignal is newPair with the QPs' SignalAll set to signalAll, on a
// context opened with opts.
func newPairSignal(t testing.TB, bufSize int, depth uint32, signalAll bool, opts *verbs.Options) *pair {
	t.Helper()
	return newPairCh(t, bufSize, depth, signalAll, opts, false)
}

// newChanPair is newPairSignal with each CQ bound to a completion channel
// of its own (chA, chB).
func newChanPair(t testing.TB, bufSize int, depth uint32, signalAll bool, opts *verbs.Options) *pair {
	t.Helper()
	return newPairCh(t, bufSize, depth, signalAll, opts, true)
}

func newPairCh(t testing.TB, bufSize int, depth uint32, signalAll bool, opts *verbs.Options, channels bool) *pair {
	t.Helper()
	p := &pair{ctx: open(t, opts)}
	var err error
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	p.pd, err = p.ctx.AllocPD()
	must(err)
	t.Cleanup(func() { must(p.pd.Close()) })
	for _, b := range []*[]byte{&p.bufA, &p.bufB} {
		*b, err = verbs.AllocBuffer(bufSize)
		must(err)
		buf := *b
		t.Cleanup(func() { verbs.FreeBuffer(buf) })
	}
	p.mrA, err = p.pd.RegMR(p.bufA, verbs.AccessAll)
	must(err)
	t.Cleanup(func() { must(p.mrA.Close()) })
	p.mrB, err = p.pd.RegMR(p.bufB, verbs.AccessAll)
	must(err)
	t.Cleanup(func() { must(p.mrB.Close()) })
	if channels {
		// Cleanups run last-in first-out: the channels close after their CQs.
		p.chA, err = p.ctx.CreateCompChannel()
		must(err)
		t.Cleanup(func() { must(p.chA.Close()) })
		p.chB, err = p.ctx.CreateCompChannel()
		must(err)
		t.Cleanup(func() { must(p.chB.Close()) })
	}
	p.cqA, err = p.ctx.CreateCQWithChannel(int(2*depth), p.chA)
	must(err)
	t.Cleanup(func() { must(p.cqA.Close()) })
	p.cqB, err = p.ctx.CreateCQWithChannel(int(2*depth), p.chB)
	must(err)
	t.Cleanup(func() { must(p.cqB.Close()) })
	caps := verbs.QPCaps{MaxSendWR: depth, MaxRecvWR: depth, MaxSendSGE: 2, MaxRecvSGE: 2, MaxInline: 64}
	p.a, err = p.pd.CreateQP(verbs.QPConfig{SendCQ: p.cqA, RecvCQ: p.cqA, Caps: caps, SignalAll: signalAll})
	must(err)
	t.Cleanup(func() { must(p.a.Close()) })
	p.b, err = p.pd.CreateQP(verbs.QPConfig{SendCQ: p.cqB, RecvCQ: p.cqB, Caps: caps, SignalAll: signalAll})
	must(err)
	t.Cleanup(func() { must(p.b.Close()) })
	g, err := verbs.FindRoCEv2GID(p.ctx.Device.Name, 1)
	must(err)
	must(p.a.Connect(verbs.ConnectConfig{GIDIndex: uint8(g.Index), LocalPSN: 100, Remote: verbs.Endpoint{QPN: p.b.QPN, PSN: 200, GID: g.GID}}))
	must(p.b.Connect(verbs.ConnectConfig{GIDIndex: uint8(g.Index), LocalPSN: 200, Remote: verbs.Endpoint{QPN: p.a.QPN, PSN: 100, GID: g.GID}}))
	if p.a.State() != verbs.QPRTS || p.b.State() != verbs.QPRTS {
		t.Fatalf("states %v %v", p.a.State(), p.b.State())
	}
	return p
}

// waitN polls cq until n completions arrived (each must succeed).
func waitN(t testing.TB, cq *verbs.CQ, n int) []verbs.WC {
	t.Helper()
	out := make([]verbs.WC, 0, n)
	buf := make([]verbs.WC, 64)
	deadline := time.Now().Add(30 * time.Second)
	for len(out) < n {
		k, err := cq.Poll(buf[:min(len(buf), n-len(out))])
		if err != nil {
			t.Fatal(err)
		}
		for _, wc := range buf[:k] {
			if err := wc.Err(); err != nil {
				t.Fatalf("completion %d of %d: %v", len(out)+1, n, err)
			}
			out = append(out, wc)
		}
		if k == 0 && time.Now().After(deadline) {
			t.Fatalf("%d of %d completions after 30s", len(out), n)
		}
	}
	return out
}

func fill(b []byte, seed byte) {
	for i := range b {
		b[i] = byte(i*7) + seed
	}
}

func TestSendRecv(t *testing.T) {
	const max = 1 << 20
	p := newPair(t, max, 16)
	for _, n := range []int{1, 2, 63, 64, 65, 1023, 1024, 4096, 4097, 65536, max - 1, max} {
		fill(p.bufA[:n], byte(n))
		clear(p.bufB)
		rs, _ := p.mrB.SGE(0, max)
		if err := p.b.PostRecv([]verbs.RecvWR{{ID: 7, SGEs: []verbs.SGE{rs}}}); err != nil {
			t.Fatal(err)
		}
		ss, _ := p.mrA.SGE(0, n)
		if err := p.a.PostSend([]verbs.SendWR{{ID: uint64(n), Op: verbs.OpSend, SGEs: []verbs.SGE{ss}}}); err != nil {
			t.Fatal(err)
		}
		sc := waitN(t, p.cqA, 1)[0]
		rc := waitN(t, p.cqB, 1)[0]
		if sc.ID != uint64(n) || sc.Opcode != verbs.WCSend || rc.ID != 7 || rc.Opcode != verbs.WCRecv || rc.ByteLen != uint32(n) || rc.QPN != p.b.QPN {
			t.Fatalf("size %d: send wc %+v recv wc %+v", n, sc, rc)
		}
		if !bytes.Equal(p.bufA[:n], p.bufB[:n]) || p.bufB[n%max] != 0 && n < max {
			t.Fatalf("size %d: data differs", n)
		}
	}
	// Every command, the doorbells included, went through
	// RDMA_VERBS_IOCTL: none needed the write() fallback.
	if p.ctx.UsesWrite() || p.ctx.WriteFallbacks() != 0 {
		t.Fatalf("write fallbacks: %v, %d", p.ctx.UsesWrite(), p.ctx.WriteFallbacks())
	}
}

func TestSendImmInlineTwoSGEs(t *testing.T) {
	p := newPair(t, 4096, 16)
	msg := []byte("inline hello")
	r1, _ := p.mrB.SGE(0, 5)
	r2, _ := p.mrB.SGE(100, 100)
	if err := p.b.PostRecv([]verbs.RecvWR{{ID: 1, SGEs: []verbs.SGE{r1, r2}}}); err != nil {
		t.Fatal(err)
	}
	if err := p.a.PostSend([]verbs.SendWR{{ID: 2, Op: verbs.OpSendImm, Inline: msg, Imm: 0xdeadbeef}}); err != nil {
		t.Fatal(err)
	}
	waitN(t, p.cqA, 1)
	rc := waitN(t, p.cqB, 1)[0]
	if rc.Imm != 0xdeadbeef || rc.ByteLen != uint32(len(msg)) || rc.Flags&1 == 0 {
		t.Fatalf("recv wc %+v", rc)
	}
	if got := string(p.bufB[:5]) + string(p.bufB[100:100+len(msg)-5]); got != string(msg) {
		t.Fatalf("scattered %q", got)
	}
}

func TestRDMAWriteRead(t *testing.T) {
	const n = 1 << 20
	p := newPair(t, n, 16)
	for _, size := range []int{1, 4096, 100000, n} {
		fill(p.bufA[:size], byte(size>>3))
		clear(p.bufB)
		ls, _ := p.mrA.SGE(0, size)
		if err := p.a.PostSend([]verbs.SendWR{{ID: 1, Op: verbs.OpRDMAWrite, SGEs: []verbs.SGE{ls}, RemoteAddr: p.mrB.Addr(0), RKey: p.mrB.RKey}}); err != nil {
			t.Fatal(err)
		}
		if wc := waitN(t, p.cqA, 1)[0]; wc.Opcode != verbs.WCRDMAWrite {
			t.Fatalf("write wc %+v", wc)
		}
		if !bytes.Equal(p.bufA[:size], p.bufB[:size]) {
			t.Fatalf("write %d: data differs", size)
		}
		// Read it back into A's upper half after changing B.
		fill(p.bufB[:size], 0x5a)
		clear(p.bufA)
		if err := p.a.PostSend([]verbs.SendWR{{ID: 2, Op: verbs.OpRDMARead, SGEs: []verbs.SGE{ls}, RemoteAddr: p.mrB.Addr(0), RKey: p.mrB.RKey}}); err != nil {
			t.Fatal(err)
		}
		if wc := waitN(t, p.cqA, 1)[0]; wc.Opcode != verbs.WCRDMARead || wc.ByteLen != uint32(size) {
			t.Fatalf("read wc %+v", wc)
		}
		if !bytes.Equal(p.bufA[:size], p.bufB[:size]) {
			t.Fatalf("read %d: data differs", size)
		}
	}
}

func TestAtomics(t *testing.T) {
	p := newPair(t, 4096, 16)
	le := func(b []byte) uint64 {
		return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 | uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
	}
	copy(p.bufB[8:], []byte{40, 0, 0, 0, 0, 0, 0, 0})
	ls, _ := p.mrA.SGE(0, 8)
	if err := p.a.PostSend([]verbs.SendWR{{ID: 1, Op: verbs.OpAtomicFetchAdd, SGEs: []verbs.SGE{ls}, RemoteAddr: p.mrB.Addr(8), RKey: p.mrB.RKey, CompareAdd: 2}}); err != nil {
		t.Fatal(err)
	}
	waitN(t, p.cqA, 1)
	if old, now := le(p.bufA), le(p.bufB[8:]); old != 40 || now != 42 {
		t.Fatalf("fetch-add: old %d now %d", old, now)
	}
	if err := p.a.PostSend([]verbs.SendWR{{ID: 2, Op: verbs.OpAtomicCmpSwap, SGEs: []verbs.SGE{ls}, RemoteAddr: p.mrB.Addr(8), RKey: p.mrB.RKey, CompareAdd: 42, Swap: 7}}); err != nil {
		t.Fatal(err)
	}
	waitN(t, p.cqA, 1)
	if old, now := le(p.bufA), le(p.bufB[8:]); old != 42 || now != 7 {
		t.Fatalf("cmp-swap: old %d now %d", old, now)
	}
}

// TestManySmallSends pushes 100,000 8-byte sends through a 64-deep queue
// and checks that every one completes once, in order, on both sides.
func TestManySmallSends(t *testing.T) {
	total := 100000
	if testing.Short() {
		total = 5000
	}
	const depth = 64
	p := newPair(t, 1<<16, depth)
	recv := make([]verbs.RecvWR, depth)
	for i := range recv {
		s, _ := p.mrB.SGE(i*8, 8)
		recv[i] = verbs.RecvWR{ID: uint64(i), SGEs: []verbs.SGE{s}}
	}
	if err := p.b.PostRecv(recv); err != nil {
		t.Fatal(err)
	}
	const batch = 16
	wrs := make([]verbs.SendWR, batch)
	wcs := make([]verbs.WC, depth)
	sent, sendDone, recvDone := 0, 0, 0
	start := time.Now()
	deadline := start.Add(5 * time.Minute)
	for recvDone < total {
		if sent < total && sent-sendDone+batch <= depth/2 {
			k := min(batch, total-sent)
			for i := range k {
				s, _ := p.mrA.SGE(((sent+i)%depth)*8, 8)
				wrs[i] = verbs.SendWR{ID: uint64(sent + i), Op: verbs.OpSend, SGEs: []verbs.SGE{s}}
			}
			if err := p.a.PostSend(wrs[:k]); err != nil {
				t.Fatalf("after %d: %v", sent, err)
			}
			sent += k
		}
		n, _ := p.cqA.Poll(wcs)
		for _, wc := range wcs[:n] {
			if wc.Err() != nil || wc.ID != uint64(sendDone) {
				t.Fatalf("send completion %d: %+v", sendDone, wc)
			}
			sendDone++
		}
		n, _ = p.cqB.Poll(wcs)
		for _, wc := range wcs[:n] {
			if wc.Err() != nil || wc.ID != uint64(recvDone%depth) || wc.ByteLen != 8 {
				t.Fatalf("recv completion %d: %+v", recvDone, wc)
			}
			recvDone++
			// Repost the buffer that just filled.
			if err := p.b.PostRecv(recv[wc.ID : wc.ID+1]); err != nil {
				t.Fatal(err)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("sent %d, completed %d/%d", sent, sendDone, recvDone)
		}
	}
	for sendDone < total {
		n, _ := p.cqA.Poll(wcs)
		sendDone += n
	}
	el := time.Since(start)
	t.Logf("%d sends in %v (%.1f µs each)", total, el.Round(time.Millisecond), float64(el.Microseconds())/float64(total))
}

func TestErrors(t *testing.T) {
	p := newPair(t, 4096, 16)
	if _, err := p.mrA.SGE(4000, 100); !errors.Is(err, verbs.ErrOutOfBounds) {
		t.Fatalf("SGE out of bounds: %v", err)
	}
	var ve *verbs.Error
	s, _ := p.mrA.SGE(0, 8)
	tooMany := make([]verbs.SGE, p.a.Caps.MaxSendSGE+1)
	for i := range tooMany {
		tooMany[i] = s
	}
	err := p.a.PostSend([]verbs.SendWR{{Op: verbs.OpSend, SGEs: tooMany}})
	if !errors.Is(err, verbs.ErrTooManySGEs) || !errors.As(err, &ve) || ve.Op != "post_send" {
		t.Fatalf("%d SGEs: %v", len(tooMany), err)
	}
	if err := p.a.PostSend([]verbs.SendWR{{Op: verbs.OpSend, Inline: make([]byte, 4096)}}); !errors.Is(err, verbs.ErrInlineTooBig) {
		t.Fatalf("big inline: %v", err)
	}
	// A QP that never left RESET.
	q, err := p.pd.CreateQP(verbs.QPConfig{SendCQ: p.cqA, RecvCQ: p.cqA, Caps: verbs.QPCaps{MaxSendWR: 4, MaxRecvWR: 4}})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.PostSend([]verbs.SendWR{{Op: verbs.OpSend, SGEs: []verbs.SGE{s}}}); !errors.Is(err, verbs.ErrQPState) {
		t.Fatalf("post in RESET: %v", err)
	}
	if err := q.ToRTS(0); !errors.Is(err, verbs.ErrQPState) || !errors.Is(err, errnoEINVAL) {
		t.Fatalf("RESET→RTS: %v", err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.PostSend([]verbs.SendWR{{Op: verbs.OpSend, SGEs: []verbs.SGE{s}}}); !errors.Is(err, verbs.ErrClosed) {
		t.Fatalf("post on closed QP: %v", err)
	}
	if err := q.PostRecv([]verbs.RecvWR{{SGEs: []verbs.SGE{s}}}); !errors.Is(err, verbs.ErrClosed) {
		t.Fatalf("recv on closed QP: %v", err)
	}
	// A full send queue.
	many := make([]verbs.SendWR, 4096) // more than any ring holds
	for i := range many {
		many[i] = verbs.SendWR{Op: verbs.OpRDMAWrite, SGEs: []verbs.SGE{s}, RemoteAddr: p.mrB.Addr(0), RKey: p.mrB.RKey}
	}
	if err := p.a.PostSend(many); !errors.Is(err, verbs.ErrQueueFull) {
		t.Fatalf("overfull post: %v", err)
	}
	// The PD still has MRs and QPs: the kernel refuses.
	if err := p.pd.Close(); !errors.Is(err, errnoEBUSY) {
		t.Fatalf("dealloc busy PD: %v", err)
	}
	// A wrong rkey fails the work request, not the process.
	if err := p.a.PostSend([]verbs.SendWR{{ID: 9, Op: verbs.OpRDMAWrite, SGEs: []verbs.SGE{s}, RemoteAddr: p.mrB.Addr(0), RKey: p.mrB.RKey + 1}}); err != nil {
		t.Fatal(err)
	}
	wcs := make([]verbs.WC, 1)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if n, _ := p.cqA.Poll(wcs); n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no completion for the bad rkey")
		}
	}
	if wcs[0].Status != verbs.WCRemAccessErr || wcs[0].Err() == nil {
		t.Fatalf("bad rkey: %+v", wcs[0])
	}
	t.Logf("bad rkey: %v", wcs[0].Err())
}

func TestClosedContext(t *testing.T) {
	c := open(t, nil)
	pd, err := c.AllocPD()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AllocPD(); !errors.Is(err, verbs.ErrClosed) {
		t.Fatalf("AllocPD after Close: %v", err)
	}
	if err := pd.Close(); err != nil {
		t.Fatalf("PD close after context close: %v", err)
	}
}

func TestRxeAddDel(t *testing.T) {
	rxeDevice(t)
	const nd, name = "d9", "rxe9"
	l := &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: nd}}
	if err := netlink.LinkAdd(l); err != nil {
		t.Fatal(err)
	}
	defer netlink.LinkDel(l)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Down and without an address: refused before any netlink RDMA call.
	if _, err := verbs.AddRxe(ctx, name, nd); err == nil {
		t.Fatal("AddRxe on a down netdev succeeded")
	} else {
		t.Logf("down netdev: %v", err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		t.Fatal(err)
	}
	if err := verbs.CheckNetdev(nd); !errors.Is(err, errnoEADDRNOTAVAIL) {
		t.Fatalf("no address: %v", err)
	}
	if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(10, 9, 9, 1), Mask: net.CIDRMask(24, 32)}}); err != nil {
		t.Fatal(err)
	}
	d, err := verbs.AddRxe(ctx, name, nd)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("added %s at %s", d.Name, d.Uverbs)
	ls, err := verbs.Links()
	if err != nil {
		t.Fatal(err)
	}
	if !hasLink(ls, name) {
		t.Fatalf("%s not in %v", name, ls)
	}
	g, err := verbs.FindRoCEv2GID(name, 1)
	if err != nil || !g.GID.Equal(net.IPv4(10, 9, 9, 1)) {
		t.Fatalf("gid %+v %v", g, err)
	}
	if err := verbs.DelRxe(name); err != nil {
		t.Fatal(err)
	}
	ls, _ = verbs.Links()
	if hasLink(ls, name) {
		t.Fatalf("%s still listed after DelRxe", name)
	}
	if _, err := verbs.Device(name); !errors.Is(err, verbs.ErrNoDevice) {
		t.Fatalf("Device after del: %v", err)
	}
}

func hasLink(ls []verbs.Link, name string) bool {
	for _, l := range ls {
		if l.Name == name {
			return true
		}
	}
	return false
}
