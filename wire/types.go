package wire

import (
	"strconv"
	"strings"
)

// Type is a frame's message type. The values are part of the protocol.
type Type uint8

// Message types. 0 is never valid, so a zeroed header is caught.
const (
	TypeHello    Type = 1
	TypeShip     Type = 2
	TypeInvoke   Type = 3
	TypeForward  Type = 4
	TypeNeedCode Type = 5
	TypeResult   Type = 6
	TypeError    Type = 7
	TypeGet      Type = 8
	TypeGetReply Type = 9
	TypePut      Type = 10
	TypePutReply Type = 11
	TypeAM       Type = 12
)

func (t Type) String() string {
	switch t {
	case TypeHello:
		return "HELLO"
	case TypeShip:
		return "SHIP"
	case TypeInvoke:
		return "INVOKE"
	case TypeForward:
		return "FORWARD"
	case TypeNeedCode:
		return "NEED_CODE"
	case TypeResult:
		return "RESULT"
	case TypeError:
		return "ERROR"
	case TypeGet:
		return "GET"
	case TypeGetReply:
		return "GET_REPLY"
	case TypePut:
		return "PUT"
	case TypePutReply:
		return "PUT_REPLY"
	case TypeAM:
		return "AM"
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// Capability is a bit set a node announces in HELLO. Bits this version does
// not name are carried unchanged, so newer peers can add some.
type Capability uint32

const (
	// CapLLVM: the node has an LLVM toolchain and can build code for its
	// own triple from bitcode.
	CapLLVM Capability = 1 << iota
	// CapRDMA: the node accepts RDMA connections.
	CapRDMA
	// CapBusyPoll: the node busy-polls its queues, so latency is low but a
	// core is spent.
	CapBusyPoll
	// CapSharedMemory: the node accepts shared-memory connections from
	// peers on the same host (transport/shm).
	CapSharedMemory
)

// Has reports whether every bit of c2 is set in c.
func (c Capability) Has(c2 Capability) bool { return c&c2 == c2 }

func (c Capability) String() string {
	if c == 0 {
		return "0"
	}
	var parts []string
	for _, n := range [...]struct {
		bit  Capability
		name string
	}{{CapLLVM, "LLVM"}, {CapRDMA, "RDMA"}, {CapBusyPoll, "BusyPoll"}, {CapSharedMemory, "SharedMemory"}} {
		if c&n.bit != 0 {
			parts = append(parts, n.name)
			c &^= n.bit
		}
	}
	if c != 0 {
		parts = append(parts, "0x"+strconv.FormatUint(uint64(c), 16))
	}
	return strings.Join(parts, "|")
}

// ErrorCode is the typed reason carried by ERROR and PUT_REPLY. The values
// are part of the protocol; codes this version does not name are carried
// unchanged.
type ErrorCode uint16

const (
	CodeOK           ErrorCode = 0  // success (PUT_REPLY)
	CodeBadFrame     ErrorCode = 1  // frame or payload did not decode
	CodeUnknownType  ErrorCode = 2  // message type not understood
	CodeUnknownCode  ErrorCode = 3  // code hash not cached here; SHIP it
	CodeUntrusted    ErrorCode = 4  // code unsigned or signed by an untrusted key
	CodeTTLExhausted ErrorCode = 5  // forward refused: TTL reached 0
	CodeFault        ErrorCode = 6  // code faulted (signal) and was contained
	CodeDeadline     ErrorCode = 7  // code ran past its deadline and was aborted
	CodeUnresolved   ErrorCode = 8  // code references a symbol the node lacks
	CodePeerDown     ErrorCode = 9  // a node on the path is unreachable
	CodeTooLarge     ErrorCode = 10 // frame or field over the receiver's limit
	CodeNoTriple     ErrorCode = 11 // no variant for this node's target triple
	CodeNoEntry      ErrorCode = 12 // entry symbol not defined by the code
	CodeNoRegion     ErrorCode = 13 // GET/PUT region not registered
	CodeOutOfRange   ErrorCode = 14 // GET/PUT offset+length outside the region
	CodeNoHandler    ErrorCode = 15 // AM handler not registered
	CodeInternal     ErrorCode = 16 // anything else; the text says what
)

func (c ErrorCode) String() string {
	switch c {
	case CodeOK:
		return "ok"
	case CodeBadFrame:
		return "bad frame"
	case CodeUnknownType:
		return "unknown message type"
	case CodeUnknownCode:
		return "unknown code"
	case CodeUntrusted:
		return "untrusted code"
	case CodeTTLExhausted:
		return "TTL exhausted"
	case CodeFault:
		return "fault"
	case CodeDeadline:
		return "deadline exceeded"
	case CodeUnresolved:
		return "unresolved symbol"
	case CodePeerDown:
		return "peer down"
	case CodeTooLarge:
		return "too large"
	case CodeNoTriple:
		return "no code for target triple"
	case CodeNoEntry:
		return "no such entry"
	case CodeNoRegion:
		return "no such region"
	case CodeOutOfRange:
		return "out of range"
	case CodeNoHandler:
		return "no such handler"
	case CodeInternal:
		return "internal error"
	}
	return "ErrorCode(" + strconv.Itoa(int(c)) + ")"
}
