package wire

import (
	"bytes"
	"fmt"
	"slices"
)

// Decoder decodes payloads into messages it keeps, one of each type, so
// that a stream's receiver allocates nothing per frame: a message is
// valid until the next Decode. Byte fields alias the payload, as with
// Decode. A Decoder is not safe for concurrent use; the zero value is
// ready.
type Decoder struct {
	hello    Hello
	ship     Ship
	invoke   Invoke
	forward  Forward
	needCode NeedCode
	result   Result
	errorMsg ErrorMsg
	get      Get
	getReply GetReply
	put      Put
	putReply PutReply
	am       AM
}

// Decode decodes a payload of type t into the Decoder's message of that
// type. It fails as Decode does.
func (d *Decoder) Decode(t Type, payload []byte) (Message, error) {
	m := d.message(t)
	if m == nil {
		return nil, &DecodeError{Type: t, Err: ErrUnknownType}
	}
	// A message's Decode replaces all of it on success: nothing of the
	// previous frame shows through.
	if err := m.Decode(payload); err != nil {
		return nil, err
	}
	return m, nil
}

func (d *Decoder) message(t Type) Message {
	switch t {
	case TypeHello:
		return &d.hello
	case TypeShip:
		return &d.ship
	case TypeInvoke:
		return &d.invoke
	case TypeForward:
		return &d.forward
	case TypeNeedCode:
		return &d.needCode
	case TypeResult:
		return &d.result
	case TypeError:
		return &d.errorMsg
	case TypeGet:
		return &d.get
	case TypeGetReply:
		return &d.getReply
	case TypePut:
		return &d.put
	case TypePutReply:
		return &d.putReply
	case TypeAM:
		return &d.am
	}
	return nil
}

// Clone returns a copy of m that shares no memory with it: what a receiver
// keeps of a message whose memory is reused (Decoder, a transport's read
// buffer).
func Clone(m Message) Message {
	switch m := m.(type) {
	case *Hello:
		c := *m
		c.Triples = slices.Clone(m.Triples)
		return &c
	case *Ship:
		c := *m
		c.Bundle = bytes.Clone(m.Bundle)
		return &c
	case *Invoke:
		c := *m
		c.Arg = bytes.Clone(m.Arg)
		return &c
	case *Forward:
		c := *m
		c.Arg = bytes.Clone(m.Arg)
		return &c
	case *NeedCode:
		c := *m
		return &c
	case *Result:
		c := *m
		c.Reply = bytes.Clone(m.Reply)
		return &c
	case *ErrorMsg:
		c := *m
		return &c
	case *Get:
		c := *m
		return &c
	case *GetReply:
		c := *m
		c.Data = bytes.Clone(m.Data)
		return &c
	case *Put:
		c := *m
		c.Data = bytes.Clone(m.Data)
		return &c
	case *PutReply:
		c := *m
		return &c
	case *AM:
		c := *m
		c.Arg = bytes.Clone(m.Arg)
		return &c
	}
	panic(fmt.Sprintf("wire: Clone of %T", m)) // the set of messages is closed
}
