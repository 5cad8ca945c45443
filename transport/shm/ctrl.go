package shm

import (
	"encoding/binary"
	"fmt"
)

// ctrlHandler is the AM handler name that carries the setup messages over
// the TCP connection; the transport consumes them, the node never sees
// them.
const ctrlHandler = "\x00bcship.shm"

// Setup message kinds (the first byte of the AM argument).
const (
	ctrlOffer  byte = 1 // initiator → acceptor: host, segment name, token
	ctrlAccept byte = 2 // acceptor → initiator: mapped, consumer running
	ctrlReject byte = 3 // acceptor → initiator: why not (reason)
)

// Reject reasons the initiator acts on; any other text is an error to
// log (and the pair stays on TCP).
const (
	reasonCollision = "collision" // both set up at once: the lower id's wins
	reasonOtherHost = "other host"
)

type ctrlMsg struct {
	Kind   byte
	Nonce  uint64 // names the setup attempt
	Host   string // OFFER: the initiator's host identity
	Name   string // OFFER: the segment file's name in the acceptor's Dir
	Token  [tokenLen]byte
	Reason string // REJECT
}

func (m *ctrlMsg) encode() []byte {
	b := binary.LittleEndian.AppendUint64([]byte{m.Kind}, m.Nonce)
	switch m.Kind {
	case ctrlOffer:
		b = appendStr(appendStr(b, m.Host), m.Name)
		b = append(b, m.Token[:]...)
	case ctrlReject:
		b = appendStr(b, m.Reason)
	}
	return b
}

func appendStr(b []byte, s string) []byte {
	s = s[:min(len(s), 0xffff)]
	return append(binary.LittleEndian.AppendUint16(b, uint16(len(s))), s...)
}

// decodeCtrl parses a setup message from the peer: every length is
// checked, and nothing may follow the last field.
func decodeCtrl(b []byte) (ctrlMsg, error) {
	var m ctrlMsg
	bad := func() (ctrlMsg, error) {
		return m, fmt.Errorf("%w: malformed control message (%d bytes)", ErrSetup, len(b))
	}
	if len(b) < 9 {
		return bad()
	}
	m.Kind, m.Nonce = b[0], binary.LittleEndian.Uint64(b[1:])
	rest := b[9:]
	str := func() (string, bool) {
		if len(rest) < 2 {
			return "", false
		}
		n := int(binary.LittleEndian.Uint16(rest))
		if len(rest) < 2+n {
			return "", false
		}
		s := string(rest[2 : 2+n])
		rest = rest[2+n:]
		return s, true
	}
	var ok bool
	switch m.Kind {
	case ctrlOffer:
		if m.Host, ok = str(); !ok {
			return bad()
		}
		if m.Name, ok = str(); !ok || len(rest) < tokenLen {
			return bad()
		}
		rest = rest[copy(m.Token[:], rest):]
	case ctrlReject:
		if m.Reason, ok = str(); !ok {
			return bad()
		}
	case ctrlAccept:
	default:
		return m, fmt.Errorf("%w: control message kind %d", ErrSetup, m.Kind)
	}
	if len(rest) != 0 {
		return bad()
	}
	return m, nil
}
