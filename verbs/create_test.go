package verbs_test

import (
	"fmt"
	"testing"

	"github.com/bcship/bcship/verbs"
)

// createPaths are the ways CQs and QPs can be created.
var createPaths = []struct {
	name string
	opts verbs.Options
}{
	{"native", verbs.Options{}},                           // UVERBS_METHOD_CQ_CREATE / QP_CREATE
	{"invoke-write", verbs.Options{NoNativeCreate: true}}, // CREATE_CQ / CREATE_QP structs through INVOKE_WRITE
	{"write", verbs.Options{ForceWrite: true}},            // the same through write()
}

// TestCreatePaths creates a CQ and an RC QP through each path and moves
// data over the QP: the kernel takes every path (no fallbacks on 6.1).
func TestCreatePaths(t *testing.T) {
	rxeDevice(t)
	for _, path := range createPaths {
		t.Run(path.name, func(t *testing.T) {
			c := open(t, &path.opts)
			pd, err := c.AllocPD()
			if err != nil {
				t.Fatal(err)
			}
			defer pd.Close()
			cq, err := c.CreateCQ(32)
			if err != nil {
				t.Fatal(err)
			}
			defer cq.Close()
			qp, err := pd.CreateQP(verbs.QPConfig{SendCQ: cq, RecvCQ: cq, SignalAll: true,
				Caps: verbs.QPCaps{MaxSendWR: 8, MaxRecvWR: 8, MaxInline: 32}})
			if err != nil {
				t.Fatal(err)
			}
			defer qp.Close()
			if cq.Depth() < 32 || qp.QPN == 0 || qp.Caps.MaxSendWR < 8 || qp.Caps.MaxInline < 32 {
				t.Fatalf("cq depth %d, qpn %d, caps %+v", cq.Depth(), qp.QPN, qp.Caps)
			}
			if n := c.WriteFallbacks(); n != 0 {
				t.Fatalf("%d commands fell back to write()", n)
			}
			// The QP works: loop it back to itself and send.
			buf, err := verbs.AllocBuffer(4096)
			if err != nil {
				t.Fatal(err)
			}
			defer verbs.FreeBuffer(buf)
			mr, err := pd.RegMR(buf, verbs.AccessAll)
			if err != nil {
				t.Fatal(err)
			}
			defer mr.Close()
			g, err := verbs.FindRoCEv2GID(c.Device.Name, 1)
			if err != nil {
				t.Fatal(err)
			}
			if err := qp.Connect(verbs.ConnectConfig{GIDIndex: uint8(g.Index), LocalPSN: 7, Remote: verbs.Endpoint{QPN: qp.QPN, PSN: 7, GID: g.GID}}); err != nil {
				t.Fatal(err)
			}
			rs, _ := mr.SGE(2048, 16)
			if err := qp.PostRecv([]verbs.RecvWR{{ID: 1, SGEs: []verbs.SGE{rs}}}); err != nil {
				t.Fatal(err)
			}
			if err := qp.PostSend([]verbs.SendWR{{ID: 2, Op: verbs.OpSend, Inline: []byte("loopback")}}); err != nil {
				t.Fatal(err)
			}
			waitN(t, cq, 2)
			if string(buf[2048:2056]) != "loopback" {
				t.Fatalf("received %q", buf[2048:2056])
			}
		})
	}
}

// BenchmarkCreate times creating and destroying a CQ and an RC QP through
// each path.
func BenchmarkCreate(b *testing.B) {
	rxeDevice(b)
	for _, path := range createPaths {
		b.Run(path.name, func(b *testing.B) {
			c := open(b, &path.opts)
			pd, err := c.AllocPD()
			if err != nil {
				b.Fatal(err)
			}
			defer pd.Close()
			b.ResetTimer()
			for range b.N {
				cq, err := c.CreateCQ(64)
				if err != nil {
					b.Fatal(err)
				}
				qp, err := pd.CreateQP(verbs.QPConfig{SendCQ: cq, RecvCQ: cq, Caps: verbs.QPCaps{MaxSendWR: 32, MaxRecvWR: 32}})
				if err != nil {
					b.Fatal(err)
				}
				if err := qp.Close(); err != nil {
					b.Fatal(err)
				}
				if err := cq.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if n := c.WriteFallbacks(); n != 0 {
				b.Fatal(fmt.Sprintf("%d fallbacks", n))
			}
		})
	}
}
