package wire

import "unicode/utf8"

// Message is one of the message types of this package; the set is closed.
//
// Decode replaces the receiver only when it returns nil. Byte-slice fields
// of a decoded message alias the payload (empty ones are nil), so copy them
// before the payload's buffer is reused; strings are copies.
type Message interface {
	Type() Type
	// AppendTo appends the payload encoding to dst. It fails, leaving dst
	// unchanged, only if a field is over a limit the decoder enforces.
	AppendTo(dst []byte) ([]byte, error)
	Decode(payload []byte) error
	isMessage()
}

// Decode decodes a payload of type t into a new message.
func Decode(t Type, payload []byte) (Message, error) {
	m := newMessage(t)
	if m == nil {
		return nil, &DecodeError{Type: t, Err: ErrUnknownType}
	}
	if err := m.Decode(payload); err != nil {
		return nil, err
	}
	return m, nil
}

func newMessage(t Type) Message {
	switch t {
	case TypeHello:
		return new(Hello)
	case TypeShip:
		return new(Ship)
	case TypeInvoke:
		return new(Invoke)
	case TypeForward:
		return new(Forward)
	case TypeNeedCode:
		return new(NeedCode)
	case TypeResult:
		return new(Result)
	case TypeError:
		return new(ErrorMsg)
	case TypeGet:
		return new(Get)
	case TypeGetReply:
		return new(GetReply)
	case TypePut:
		return new(Put)
	case TypePutReply:
		return new(PutReply)
	case TypeAM:
		return new(AM)
	}
	return nil
}

// Hello introduces a node to a peer, first thing on a connection.
type Hello struct {
	Node     uint32
	LLVM     uint16 // LLVM major version, 0 if the node has no toolchain
	Caps     Capability
	MaxFrame uint32   // largest payload the node accepts, 0 = DefaultMaxFrameSize
	Listen   string   // address peers dial to reach the node, "" if none
	Triples  []string // target triples the node runs, preferred first
}

func (*Hello) Type() Type { return TypeHello }
func (*Hello) isMessage() {}

func (m *Hello) AppendTo(dst []byte) ([]byte, error) {
	if err := checkStr(TypeHello, "listen", m.Listen); err != nil {
		return dst, err
	}
	if err := checkStrs(TypeHello, "triples", m.Triples); err != nil {
		return dst, err
	}
	dst = appendU32(dst, m.Node)
	dst = appendU16(dst, m.LLVM)
	dst = appendU32(dst, uint32(m.Caps))
	dst = appendU32(dst, m.MaxFrame)
	dst = appendStr(dst, m.Listen)
	return appendStrs(dst, m.Triples), nil
}

func (m *Hello) Decode(payload []byte) error {
	d := decoder{b: payload, typ: TypeHello}
	v := Hello{
		Node:     d.u32("node"),
		LLVM:     d.u16("llvm"),
		Caps:     Capability(d.u32("caps")),
		MaxFrame: d.u32("max_frame"),
		Listen:   d.str("listen"),
		Triples:  d.strs("triples"),
	}
	if err := d.finish(); err != nil {
		return err
	}
	*m = v
	return nil
}

// Ship delivers code: a bundle (as toolchain writes it, signature included)
// and the sha256 that names it.
type Ship struct {
	Hash   [32]byte
	Bundle []byte
}

func (*Ship) Type() Type { return TypeShip }
func (*Ship) isMessage() {}

func (m *Ship) AppendTo(dst []byte) ([]byte, error) {
	if err := checkBytes(TypeShip, "bundle", m.Bundle); err != nil {
		return dst, err
	}
	dst = append(dst, m.Hash[:]...)
	return appendBytes(dst, m.Bundle), nil
}

func (m *Ship) Decode(payload []byte) error {
	d := decoder{b: payload, typ: TypeShip}
	v := Ship{Hash: d.hash("hash"), Bundle: d.bytes("bundle")}
	if err := d.finish(); err != nil {
		return err
	}
	*m = v
	return nil
}

// Invoke runs Entry of the code named Hash on the receiving node.
type Invoke struct {
	Hash          [32]byte
	Origin        uint32 // node that started the chain; RESULT and ERROR go there
	OriginRequest uint64 // request id at Origin
	TTL           uint8  // forwards still allowed
	Hops          uint8  // forwards so far, echoed in RESULT
	Flags         uint16 // carried unchanged for the runtime
	Deadline      uint32 // milliseconds left at send time, 0 = receiver's default
	Entry         string
	Arg           []byte
}

func (*Invoke) Type() Type { return TypeInvoke }
func (*Invoke) isMessage() {}

func (m *Invoke) AppendTo(dst []byte) ([]byte, error) { return m.appendTo(dst, TypeInvoke) }

func (m *Invoke) Decode(payload []byte) error { return m.decode(payload, TypeInvoke) }

func (m *Invoke) appendTo(dst []byte, t Type) ([]byte, error) {
	if err := checkStr(t, "entry", m.Entry); err != nil {
		return dst, err
	}
	if err := checkBytes(t, "arg", m.Arg); err != nil {
		return dst, err
	}
	dst = append(dst, m.Hash[:]...)
	dst = appendU32(dst, m.Origin)
	dst = appendU64(dst, m.OriginRequest)
	dst = append(dst, m.TTL, m.Hops)
	dst = appendU16(dst, m.Flags)
	dst = appendU32(dst, m.Deadline)
	dst = appendStr(dst, m.Entry)
	return appendBytes(dst, m.Arg), nil
}

func (m *Invoke) decode(payload []byte, t Type) error {
	d := decoder{b: payload, typ: t}
	v := Invoke{
		Hash:          d.hash("hash"),
		Origin:        d.u32("origin"),
		OriginRequest: d.u64("origin_request"),
		TTL:           d.u8("ttl"),
		Hops:          d.u8("hops"),
		Flags:         d.u16("flags"),
		Deadline:      d.u32("deadline"),
		Entry:         d.str("entry"),
		Arg:           d.bytes("arg"),
	}
	if err := d.finish(); err != nil {
		return err
	}
	*m = v
	return nil
}

// Forward is an Invoke passed on by a node other than the origin: same
// fields, Origin and OriginRequest kept, so the result skips the middle.
// Convert with Forward(inv) and Invoke(fwd).
type Forward Invoke

func (*Forward) Type() Type { return TypeForward }
func (*Forward) isMessage() {}

func (m *Forward) AppendTo(dst []byte) ([]byte, error) {
	return (*Invoke)(m).appendTo(dst, TypeForward)
}

func (m *Forward) Decode(payload []byte) error { return (*Invoke)(m).decode(payload, TypeForward) }

// NeedCode answers an INVOKE or FORWARD whose code the node lacks: ship
// Hash, built for Triple.
type NeedCode struct {
	Hash   [32]byte
	Triple string
}

func (*NeedCode) Type() Type { return TypeNeedCode }
func (*NeedCode) isMessage() {}

func (m *NeedCode) AppendTo(dst []byte) ([]byte, error) {
	if err := checkStr(TypeNeedCode, "triple", m.Triple); err != nil {
		return dst, err
	}
	dst = append(dst, m.Hash[:]...)
	return appendStr(dst, m.Triple), nil
}

func (m *NeedCode) Decode(payload []byte) error {
	d := decoder{b: payload, typ: TypeNeedCode}
	v := NeedCode{Hash: d.hash("hash"), Triple: d.str("triple")}
	if err := d.finish(); err != nil {
		return err
	}
	*m = v
	return nil
}

// Result is the outcome of an invocation, sent straight to its origin.
type Result struct {
	OriginRequest uint64
	Status        int64 // the entry's return value
	Hops          uint8 // forwards between the origin and the node that replied
	Reply         []byte
}

func (*Result) Type() Type { return TypeResult }
func (*Result) isMessage() {}

func (m *Result) AppendTo(dst []byte) ([]byte, error) {
	if err := checkBytes(TypeResult, "reply", m.Reply); err != nil {
		return dst, err
	}
	dst = appendU64(dst, m.OriginRequest)
	dst = appendU64(dst, uint64(m.Status))
	dst = append(dst, m.Hops)
	return appendBytes(dst, m.Reply), nil
}

func (m *Result) Decode(payload []byte) error {
	d := decoder{b: payload, typ: TypeResult}
	v := Result{
		OriginRequest: d.u64("origin_request"),
		Status:        int64(d.u64("status")),
		Hops:          d.u8("hops"),
		Reply:         d.bytes("reply"),
	}
	if err := d.finish(); err != nil {
		return err
	}
	*m = v
	return nil
}

// ErrorMsg reports a failed request. For invocations it goes, like Result,
// to the origin, and OriginRequest names the request there.
type ErrorMsg struct {
	Code          ErrorCode
	OriginRequest uint64
	Text          string
}

// NewError returns an ErrorMsg whose text is cut to MaxString bytes at a
// UTF-8 boundary, so it always encodes.
func NewError(code ErrorCode, originRequest uint64, text string) *ErrorMsg {
	if len(text) > MaxString {
		n := MaxString
		for n > 0 && !utf8.RuneStart(text[n]) {
			n--
		}
		text = text[:n]
	}
	return &ErrorMsg{Code: code, OriginRequest: originRequest, Text: text}
}

func (*ErrorMsg) Type() Type { return TypeError }
func (*ErrorMsg) isMessage() {}

func (m *ErrorMsg) AppendTo(dst []byte) ([]byte, error) {
	if err := checkStr(TypeError, "text", m.Text); err != nil {
		return dst, err
	}
	dst = appendU16(dst, uint16(m.Code))
	dst = appendU64(dst, m.OriginRequest)
	return appendStr(dst, m.Text), nil
}

func (m *ErrorMsg) Decode(payload []byte) error {
	d := decoder{b: payload, typ: TypeError}
	v := ErrorMsg{
		Code:          ErrorCode(d.u16("code")),
		OriginRequest: d.u64("origin_request"),
		Text:          d.str("text"),
	}
	if err := d.finish(); err != nil {
		return err
	}
	*m = v
	return nil
}

// Get reads Length bytes at Offset of a region registered on the receiver.
type Get struct {
	Region string
	Offset uint64
	Length uint32
}

func (*Get) Type() Type { return TypeGet }
func (*Get) isMessage() {}

func (m *Get) AppendTo(dst []byte) ([]byte, error) {
	if err := checkStr(TypeGet, "region", m.Region); err != nil {
		return dst, err
	}
	dst = appendU64(dst, m.Offset)
	dst = appendU32(dst, m.Length)
	return appendStr(dst, m.Region), nil
}

func (m *Get) Decode(payload []byte) error {
	d := decoder{b: payload, typ: TypeGet}
	v := Get{Offset: d.u64("offset"), Length: d.u32("length"), Region: d.str("region")}
	if err := d.finish(); err != nil {
		return err
	}
	*m = v
	return nil
}

// GetReply carries the bytes a GET asked for; failures come as ERROR.
type GetReply struct {
	Data []byte
}

func (*GetReply) Type() Type { return TypeGetReply }
func (*GetReply) isMessage() {}

func (m *GetReply) AppendTo(dst []byte) ([]byte, error) {
	if err := checkBytes(TypeGetReply, "data", m.Data); err != nil {
		return dst, err
	}
	return appendBytes(dst, m.Data), nil
}

func (m *GetReply) Decode(payload []byte) error {
	d := decoder{b: payload, typ: TypeGetReply}
	v := GetReply{Data: d.bytes("data")}
	if err := d.finish(); err != nil {
		return err
	}
	*m = v
	return nil
}

// Put writes Data at Offset of a region registered on the receiver.
type Put struct {
	Region string
	Offset uint64
	Data   []byte
}

func (*Put) Type() Type { return TypePut }
func (*Put) isMessage() {}

func (m *Put) AppendTo(dst []byte) ([]byte, error) {
	if err := checkStr(TypePut, "region", m.Region); err != nil {
		return dst, err
	}
	if err := checkBytes(TypePut, "data", m.Data); err != nil {
		return dst, err
	}
	dst = appendU64(dst, m.Offset)
	dst = appendStr(dst, m.Region)
	return appendBytes(dst, m.Data), nil
}

func (m *Put) Decode(payload []byte) error {
	d := decoder{b: payload, typ: TypePut}
	v := Put{Offset: d.u64("offset"), Region: d.str("region"), Data: d.bytes("data")}
	if err := d.finish(); err != nil {
		return err
	}
	*m = v
	return nil
}

// PutReply acknowledges a PUT; Status is CodeOK on success.
type PutReply struct {
	Status ErrorCode
}

func (*PutReply) Type() Type { return TypePutReply }
func (*PutReply) isMessage() {}

func (m *PutReply) AppendTo(dst []byte) ([]byte, error) {
	return appendU16(dst, uint16(m.Status)), nil
}

func (m *PutReply) Decode(payload []byte) error {
	d := decoder{b: payload, typ: TypePutReply}
	v := PutReply{Status: ErrorCode(d.u16("status"))}
	if err := d.finish(); err != nil {
		return err
	}
	*m = v
	return nil
}

// AM is an active message: run the handler predeployed on the receiver
// under Handler. It is the baseline shipped code is measured against.
type AM struct {
	Handler       string
	Origin        uint32
	OriginRequest uint64
	TTL           uint8
	Arg           []byte
}

func (*AM) Type() Type { return TypeAM }
func (*AM) isMessage() {}

func (m *AM) AppendTo(dst []byte) ([]byte, error) {
	if err := checkStr(TypeAM, "handler", m.Handler); err != nil {
		return dst, err
	}
	if err := checkBytes(TypeAM, "arg", m.Arg); err != nil {
		return dst, err
	}
	dst = appendU32(dst, m.Origin)
	dst = appendU64(dst, m.OriginRequest)
	dst = append(dst, m.TTL)
	dst = appendStr(dst, m.Handler)
	return appendBytes(dst, m.Arg), nil
}

func (m *AM) Decode(payload []byte) error {
	d := decoder{b: payload, typ: TypeAM}
	v := AM{
		Origin:        d.u32("origin"),
		OriginRequest: d.u64("origin_request"),
		TTL:           d.u8("ttl"),
		Handler:       d.str("handler"),
		Arg:           d.bytes("arg"),
	}
	if err := d.finish(); err != nil {
		return err
	}
	*m = v
	return nil
}
