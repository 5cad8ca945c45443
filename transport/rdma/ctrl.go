package rdma

import (
	"encoding/binary"
	"fmt"
	"net"
)

// ctrlHandler is the AM handler name that carries the RDMA control
// messages over the TCP connection. The transport consumes these; they
// never reach the node.
const ctrlHandler = "\x00bcship.rdma"

// Control message kinds (the first byte of the AM argument).
const (
	ctrlConnect byte = 1 // initiator → responder: its endpoint
	ctrlAccept  byte = 2 // responder → initiator: its endpoint (its QP is RTS)
	ctrlReject  byte = 3 // responder refuses (simultaneous setup, no resources)
	ctrlReady   byte = 4 // initiator's QP is RTS: the responder may send
	ctrlRegions byte = 5 // the sender's region table changed
)

// RemoteRegion is a region a peer advertised: an RDMA-registered MR.
type RemoteRegion struct {
	Name string
	Addr uint64
	Size uint64
	RKey uint32
}

// endpoint is what CONNECT and ACCEPT carry: everything the other side
// needs to bring its QP to RTS and to address our memory.
type endpoint struct {
	GID      net.IP // 16 bytes
	QPN, PSN uint32
	Slots    uint32 // receive ring slots posted for the peer
	SlotSize uint32 // bytes per receive slot
	Regions  []RemoteRegion
}

type ctrlMsg struct {
	Kind   byte
	Nonce  uint64 // names the setup attempt
	EP     endpoint
	Reason string // REJECT
}

func (m *ctrlMsg) encode() []byte {
	b := []byte{m.Kind}
	b = binary.LittleEndian.AppendUint64(b, m.Nonce)
	switch m.Kind {
	case ctrlConnect, ctrlAccept:
		b = append(b, m.EP.GID.To16()...)
		b = binary.LittleEndian.AppendUint32(b, m.EP.QPN)
		b = binary.LittleEndian.AppendUint32(b, m.EP.PSN)
		b = binary.LittleEndian.AppendUint32(b, m.EP.Slots)
		b = binary.LittleEndian.AppendUint32(b, m.EP.SlotSize)
		b = appendRegions(b, m.EP.Regions)
	case ctrlRegions:
		b = appendRegions(b, m.EP.Regions)
	case ctrlReject:
		b = appendStr(b, m.Reason)
	}
	return b
}

func appendStr(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func appendRegions(b []byte, rs []RemoteRegion) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(rs)))
	for _, r := range rs {
		b = appendStr(b, r.Name)
		b = binary.LittleEndian.AppendUint64(b, r.Addr)
		b = binary.LittleEndian.AppendUint64(b, r.Size)
		b = binary.LittleEndian.AppendUint32(b, r.RKey)
	}
	return b
}

// dec reads little-endian fields and remembers the first short read.
type dec struct {
	b   []byte
	bad bool
}

func (d *dec) take(n int) []byte {
	if d.bad || n > len(d.b) {
		d.bad = true
		return make([]byte, n)
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}
func (d *dec) u16() uint16 { return binary.LittleEndian.Uint16(d.take(2)) }
func (d *dec) u32() uint32 { return binary.LittleEndian.Uint32(d.take(4)) }
func (d *dec) u64() uint64 { return binary.LittleEndian.Uint64(d.take(8)) }
func (d *dec) str() string { return string(d.take(int(d.u16()))) }

func (d *dec) regions() []RemoteRegion {
	n := d.u32()
	if uint64(n)*22 > uint64(len(d.b)) { // 22 = the smallest record
		d.bad = true
		return nil
	}
	rs := make([]RemoteRegion, 0, n)
	for range n {
		rs = append(rs, RemoteRegion{Name: d.str(), Addr: d.u64(), Size: d.u64(), RKey: d.u32()})
	}
	return rs
}

func decodeCtrl(b []byte) (ctrlMsg, error) {
	d := dec{b: b}
	m := ctrlMsg{Kind: d.take(1)[0], Nonce: d.u64()}
	switch m.Kind {
	case ctrlConnect, ctrlAccept:
		m.EP.GID = net.IP(append([]byte(nil), d.take(16)...))
		m.EP.QPN, m.EP.PSN, m.EP.Slots, m.EP.SlotSize = d.u32(), d.u32(), d.u32(), d.u32()
		m.EP.Regions = d.regions()
		if !d.bad && (m.EP.Slots < minSlots || m.EP.SlotSize < minSlotSize) {
			return m, fmt.Errorf("%w: peer ring of %d × %d bytes", ErrSetup, m.EP.Slots, m.EP.SlotSize)
		}
	case ctrlRegions:
		m.EP.Regions = d.regions()
	case ctrlReject:
		m.Reason = d.str()
	case ctrlReady:
	default:
		return m, fmt.Errorf("%w: control message kind %d", ErrSetup, m.Kind)
	}
	if d.bad || len(d.b) != 0 {
		return m, fmt.Errorf("%w: malformed control message (kind %d)", ErrSetup, m.Kind)
	}
	return m, nil
}
