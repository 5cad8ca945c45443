package rdma

import (
	"bytes"
	"net"
	"testing"
)

// FuzzDecodeCtrl feeds the RDMA setup messages a peer sends over the
// control connection: decoding never panics or allocates without bound,
// and what decodes encodes back to the same bytes.
func FuzzDecodeCtrl(f *testing.F) {
	ep := endpoint{GID: net.ParseIP("fe80::1"), QPN: 17, PSN: 99, Slots: 64, SlotSize: 8192,
		Regions: []RemoteRegion{{Name: "chase", Addr: 1 << 40, Size: 4096, RKey: 7}}}
	for _, m := range []ctrlMsg{
		{Kind: ctrlConnect, Nonce: 1, EP: ep},
		{Kind: ctrlAccept, Nonce: 2, EP: ep},
		{Kind: ctrlReject, Nonce: 3, Reason: rejectCollision},
		{Kind: ctrlReady, Nonce: 4},
		{Kind: ctrlRegions, EP: endpoint{Regions: ep.Regions}},
	} {
		f.Add(m.encode())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeCtrl(b)
		if err != nil {
			return
		}
		again := m.encode()
		if !bytes.Equal(again, b) {
			t.Fatalf("decode then encode changed the message:\n in %x\nout %x", b, again)
		}
	})
}
