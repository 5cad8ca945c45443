package hostrt

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Ctx mirrors struct bc_ctx of csrc/rt.c: what a kernel's first argument
// points to. It holds Go pointers only for the duration of one call, and
// the caller keeps the referenced memory alive (runtime.KeepAlive) until the
// kernel has returned. The Go heap does not move, so the pointers stay valid.
type Ctx struct {
	Outbox    *byte  // start of the outbox buffer
	OutboxCap uint64 // its size in bytes
	OutboxLen uint64 // bytes the helpers have appended
	Dropped   uint64 // records that did not fit
	Regions   *Region
	NRegions  uint64
	Self      uint32
	Nodes     uint32
}

// Region mirrors struct bc_region_desc: a registered data region as
// bc_region sees it.
type Region struct {
	Name    *byte
	NameLen uint64
	Base    *byte
	Len     uint64
}

// Offsets of Ctx fields as rt.c compiles them for LP64 (both supported
// architectures); TestCtxLayout pins the Go struct to them.
const (
	CtxOutboxOffset    = 0
	CtxOutboxCapOffset = 8
	CtxOutboxLenOffset = 16
	CtxDroppedOffset   = 24
	CtxRegionsOffset   = 32
	CtxNRegionsOffset  = 40
	CtxSelfOffset      = 48
	CtxNodesOffset     = 52
	CtxSize            = 56
	RegionSize         = 32
)

// Op is the kind of an outbox record (enum in rt.c).
type Op uint32

const (
	OpReply   Op = 1 // A: payload
	OpForward Op = 2 // Node; A: argument
	OpInvoke  Op = 3 // Node; A: entry name, B: argument
	OpPut     Op = 4 // Node, Off, N; A: region name, B: data
	OpGet     Op = 5 // Node, Off, N; A: region name, B: continuation entry
	OpLog     Op = 6 // A: message
)

func (op Op) String() string {
	switch op {
	case OpReply:
		return "reply"
	case OpForward:
		return "forward"
	case OpInvoke:
		return "invoke"
	case OpPut:
		return "put"
	case OpGet:
		return "get"
	case OpLog:
		return "log"
	}
	return fmt.Sprintf("op(%d)", uint32(op))
}

// Action is one outbox record: something the kernel asked the node to do
// after it returns. A and B alias the outbox buffer.
type Action struct {
	Op   Op
	Node uint32
	Off  uint64
	N    uint64
	A, B []byte
}

// recHeader is the size of struct bc_rec.
const recHeader = 32

// ErrOutbox reports an outbox the kernel corrupted (it is plain memory the
// kernel can scribble on).
var ErrOutbox = errors.New("hostrt: corrupt outbox")

// ParseOutbox decodes the records in b (Ctx.OutboxLen bytes of the outbox).
func ParseOutbox(b []byte) ([]Action, error) { return AppendOutbox(nil, b) }

// AppendOutbox is ParseOutbox appending to acts, for callers that reuse a
// slice across runs (a node's hot path).
func AppendOutbox(acts []Action, b []byte) ([]Action, error) {
	le := binary.LittleEndian
	for off := 0; off < len(b); {
		if len(b)-off < recHeader {
			return acts, fmt.Errorf("%w: %d trailing bytes at %d", ErrOutbox, len(b)-off, off)
		}
		h := b[off : off+recHeader]
		a := Action{Op: Op(le.Uint32(h)), Node: le.Uint32(h[4:]), Off: le.Uint64(h[8:]), N: le.Uint64(h[16:])}
		alen, blen := uint64(le.Uint32(h[24:])), uint64(le.Uint32(h[28:]))
		body := (alen + blen + 7) &^ 7
		if a.Op < OpReply || a.Op > OpLog {
			return acts, fmt.Errorf("%w: unknown op %d at %d", ErrOutbox, a.Op, off)
		}
		if body > uint64(len(b)-off-recHeader) {
			return acts, fmt.Errorf("%w: record at %d overruns the outbox", ErrOutbox, off)
		}
		p := b[off+recHeader:]
		a.A = p[:alen:alen]
		a.B = p[alen : alen+blen : alen+blen]
		acts = append(acts, a)
		off += recHeader + int(body)
	}
	return acts, nil
}
