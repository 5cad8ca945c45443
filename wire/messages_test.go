package wire_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/bcship/bcship/wire"
)

var testHash = [32]byte{0: 0xba, 1: 0x5e, 31: 0xff}

// samples returns small valid messages of every type, zero-valued ones
// included. Empty byte fields are nil, as Decode returns them.
func samples() []struct {
	name string
	msg  wire.Message
} {
	return []struct {
		name string
		msg  wire.Message
	}{
		{"hello/zero", &wire.Hello{}},
		{"hello", &wire.Hello{
			Node: 7, LLVM: 19, Caps: wire.CapLLVM | wire.CapRDMA | 1<<31, MaxFrame: 1 << 20,
			Listen: "10.0.0.7:7070", Triples: []string{"x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"},
		}},
		{"ship/zero", &wire.Ship{}},
		{"ship", &wire.Ship{Hash: testHash, Bundle: []byte("\x7fELF bundle bytes")}},
		{"invoke/zero", &wire.Invoke{}},
		{"invoke", &wire.Invoke{
			Hash: testHash, Origin: 3, OriginRequest: 1<<63 | 5, TTL: 8, Hops: 1, Flags: 0xa5a5,
			Deadline: 2500, Entry: "scan_sum", Arg: bytes.Repeat([]byte{0xab}, 64),
		}},
		{"forward/zero", &wire.Forward{}},
		{"forward", &wire.Forward{
			Hash: testHash, Origin: 3, OriginRequest: 99, TTL: 7, Hops: 2, Entry: "walk", Arg: []byte{1, 2, 3},
		}},
		{"need_code/zero", &wire.NeedCode{}},
		{"need_code", &wire.NeedCode{Hash: testHash, Triple: "aarch64-unknown-linux-gnu"}},
		{"result/zero", &wire.Result{}},
		{"result", &wire.Result{OriginRequest: 42, Status: -1, Hops: 3, Reply: []byte("sum=12")}},
		{"error/zero", &wire.ErrorMsg{}},
		{"error", &wire.ErrorMsg{Code: wire.CodeUnresolved, OriginRequest: 42, Text: "unresolved: bc_frobnicate"}},
		{"error/unknown_code", &wire.ErrorMsg{Code: 999}},
		{"get/zero", &wire.Get{}},
		{"get", &wire.Get{Region: "table", Offset: 1 << 40, Length: 4096}},
		{"get_reply/zero", &wire.GetReply{}},
		{"get_reply", &wire.GetReply{Data: []byte{0, 1, 2, 3}}},
		{"put/zero", &wire.Put{}},
		{"put", &wire.Put{Region: "table", Offset: 8, Data: []byte{9, 9}}},
		{"put_reply/zero", &wire.PutReply{}},
		{"put_reply", &wire.PutReply{Status: wire.CodeOutOfRange}},
		{"am/zero", &wire.AM{}},
		{"am", &wire.AM{Handler: "count", Origin: 1, OriginRequest: 2, TTL: 4, Arg: []byte("k")}},
	}
}

// bigSamples has every string, list and byte field at or beyond its limit
// on the encoding side's accepted range.
func bigSamples() []struct {
	name string
	msg  wire.Message
} {
	s := strings.Repeat("s", wire.MaxString)
	big := bytes.Repeat([]byte{0xcd}, 1<<20)
	triples := make([]string, wire.MaxTriples)
	for i := range triples {
		triples[i] = s
	}
	return []struct {
		name string
		msg  wire.Message
	}{
		{"hello/max", &wire.Hello{Node: ^uint32(0), LLVM: ^uint16(0), Caps: ^wire.Capability(0),
			MaxFrame: ^uint32(0), Listen: s, Triples: triples}},
		{"ship/1MiB", &wire.Ship{Hash: testHash, Bundle: big}},
		{"invoke/max", &wire.Invoke{Hash: testHash, Origin: ^uint32(0), OriginRequest: ^uint64(0), TTL: 255,
			Hops: 255, Flags: ^uint16(0), Deadline: ^uint32(0), Entry: s, Arg: big}},
		{"forward/max", &wire.Forward{Entry: s, Arg: big}},
		{"need_code/max", &wire.NeedCode{Triple: s}},
		{"result/max", &wire.Result{OriginRequest: ^uint64(0), Status: -1 << 63, Hops: 255, Reply: big}},
		{"error/max", &wire.ErrorMsg{Code: ^wire.ErrorCode(0), OriginRequest: ^uint64(0), Text: s}},
		{"get/max", &wire.Get{Region: s, Offset: ^uint64(0), Length: ^uint32(0)}},
		{"get_reply/1MiB", &wire.GetReply{Data: big}},
		{"put/max", &wire.Put{Region: s, Offset: ^uint64(0), Data: big}},
		{"put_reply/max", &wire.PutReply{Status: ^wire.ErrorCode(0)}},
		{"am/max", &wire.AM{Handler: s, Origin: ^uint32(0), OriginRequest: ^uint64(0), TTL: 255, Arg: big}},
	}
}

func encode(tb testing.TB, m wire.Message) []byte {
	tb.Helper()
	b, err := m.AppendTo(nil)
	if err != nil {
		tb.Fatalf("encode %v: %v", m.Type(), err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range append(samples(), bigSamples()...) {
		t.Run(tc.name, func(t *testing.T) {
			// A non-empty prefix checks that AppendTo appends.
			enc, err := tc.msg.AppendTo([]byte("prefix"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(enc, []byte("prefix")) {
				t.Fatal("AppendTo clobbered dst")
			}
			enc = enc[len("prefix"):]
			got, err := wire.Decode(tc.msg.Type(), enc)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.msg) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, tc.msg)
			}
			if again := encode(t, got); !bytes.Equal(again, enc) {
				t.Fatal("re-encoding differs")
			}
		})
	}
}

func TestEncodeTooLarge(t *testing.T) {
	long := strings.Repeat("x", wire.MaxString+1)
	for _, tc := range []struct {
		msg   wire.Message
		field string
	}{
		{&wire.Hello{Listen: long}, "listen"},
		{&wire.Hello{Triples: []string{"ok", long}}, "triples"},
		{&wire.Hello{Triples: make([]string, wire.MaxTriples+1)}, "triples"},
		{&wire.Invoke{Entry: long}, "entry"},
		{&wire.Forward{Entry: long}, "entry"},
		{&wire.NeedCode{Triple: long}, "triple"},
		{&wire.ErrorMsg{Text: long}, "text"},
		{&wire.Get{Region: long}, "region"},
		{&wire.Put{Region: long}, "region"},
		{&wire.AM{Handler: long}, "handler"},
	} {
		t.Run(tc.msg.Type().String()+"."+tc.field, func(t *testing.T) {
			dst := []byte("keep")
			out, err := tc.msg.AppendTo(dst)
			var ee *wire.EncodeError
			if !errors.As(err, &ee) || !errors.Is(err, wire.ErrTooLarge) {
				t.Fatalf("err = %v, want *EncodeError wrapping ErrTooLarge", err)
			}
			if ee.Type != tc.msg.Type() || ee.Field != tc.field {
				t.Fatalf("error names %v.%s", ee.Type, ee.Field)
			}
			if string(out) != "keep" {
				t.Fatalf("dst changed to %q", out)
			}
			if _, err := wire.AppendFrame(nil, wire.Header{}, tc.msg); !errors.Is(err, wire.ErrTooLarge) {
				t.Fatalf("AppendFrame err = %v", err)
			}
		})
	}
}

// A string over MaxString must be refused by the decoder before it reads
// (or allocates) the string body.
func TestDecodeStringTooLarge(t *testing.T) {
	payload := append(make([]byte, 32), 0xff, 0xff) // NEED_CODE: hash, triple length 65535
	err := new(wire.NeedCode).Decode(payload)
	var de *wire.DecodeError
	if !errors.As(err, &de) || !errors.Is(err, wire.ErrTooLarge) || de.Field != "triple" {
		t.Fatalf("err = %v", err)
	}
}

func TestTruncatedPrefixes(t *testing.T) {
	for _, tc := range samples() {
		t.Run(tc.name, func(t *testing.T) {
			enc := encode(t, tc.msg)
			for i := range len(enc) {
				m, err := wire.Decode(tc.msg.Type(), enc[:i])
				if err == nil || m != nil {
					t.Fatalf("prefix %d/%d: m = %v, err = %v", i, len(enc), m, err)
				}
				var de *wire.DecodeError
				if !errors.As(err, &de) || !errors.Is(err, wire.ErrTruncated) || de.Type != tc.msg.Type() {
					t.Fatalf("prefix %d/%d: err = %v", i, len(enc), err)
				}
			}
		})
	}
}

func TestTrailingBytes(t *testing.T) {
	for _, tc := range samples() {
		enc := append(encode(t, tc.msg), 0)
		if _, err := wire.Decode(tc.msg.Type(), enc); !errors.Is(err, wire.ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", tc.name, err)
		}
	}
}

// A failed Decode must leave the receiver as it was.
func TestDecodeFailureKeepsMessage(t *testing.T) {
	m := &wire.Invoke{Entry: "kept"}
	if err := m.Decode([]byte{1, 2, 3}); err == nil {
		t.Fatal("decoded 3 bytes")
	}
	if m.Entry != "kept" {
		t.Fatalf("receiver changed: %+v", m)
	}
}

// Decoded byte fields alias the payload but must not reach past their own
// bytes: appending to one must not overwrite the next field.
func TestDecodedBytesCapped(t *testing.T) {
	enc := encode(t, &wire.Put{Region: "r", Data: []byte{1, 2}})
	enc = append(enc, 0xee)[:len(enc)] // spare capacity after the payload
	var p wire.Put
	if err := p.Decode(enc); err != nil {
		t.Fatal(err)
	}
	if cap(p.Data) != len(p.Data) {
		t.Fatalf("cap %d > len %d", cap(p.Data), len(p.Data))
	}
}

func TestUnknownType(t *testing.T) {
	for _, typ := range []wire.Type{0, wire.TypeAM + 1, 255} {
		m, err := wire.Decode(typ, encode(t, &wire.PutReply{}))
		var de *wire.DecodeError
		if m != nil || !errors.As(err, &de) || !errors.Is(err, wire.ErrUnknownType) || de.Type != typ {
			t.Errorf("type %d: m = %v, err = %v", typ, m, err)
		}
	}
}

func TestForwardIsInvoke(t *testing.T) {
	inv := wire.Invoke{Hash: testHash, Origin: 1, OriginRequest: 2, TTL: 3, Entry: "e", Arg: []byte("a")}
	fwd := wire.Forward(inv)
	if a, b := encode(t, &inv), encode(t, &fwd); !bytes.Equal(a, b) {
		t.Fatal("FORWARD payload differs from INVOKE's")
	}
	err := new(wire.Forward).Decode(nil)
	var de *wire.DecodeError
	if !errors.As(err, &de) || de.Type != wire.TypeForward {
		t.Fatalf("err = %v, want one naming FORWARD", err)
	}
}

func TestNewErrorTruncates(t *testing.T) {
	text := strings.Repeat("é", wire.MaxString) // 2 bytes each
	m := wire.NewError(wire.CodeInternal, 9, "x"+text)
	if len(m.Text) > wire.MaxString || !strings.HasPrefix("x"+text, m.Text) || len(m.Text) < wire.MaxString-1 {
		t.Fatalf("text of %d bytes", len(m.Text))
	}
	if !strings.HasSuffix(m.Text, "é") {
		t.Fatal("cut inside a rune")
	}
	encode(t, m)
	if short := wire.NewError(wire.CodeFault, 1, "boom"); short.Text != "boom" {
		t.Fatalf("short text changed: %q", short.Text)
	}
}

func TestDecodeErrorText(t *testing.T) {
	err := new(wire.Invoke).Decode(make([]byte, 10))
	if got, want := err.Error(), "wire: decode INVOKE.hash: truncated"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestStrings(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{wire.TypeNeedCode.String(), "NEED_CODE"},
		{wire.Type(99).String(), "Type(99)"},
		{wire.CodeTTLExhausted.String(), "TTL exhausted"},
		{wire.ErrorCode(999).String(), "ErrorCode(999)"},
		{(wire.CapLLVM | wire.CapBusyPoll | 1<<8).String(), "LLVM|BusyPoll|0x100"},
		{wire.Capability(0).String(), "0"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	for c := wire.CodeOK; c <= wire.CodeInternal; c++ {
		if strings.HasPrefix(c.String(), "ErrorCode(") {
			t.Errorf("code %d has no name", c)
		}
	}
	for typ := wire.TypeHello; typ <= wire.TypeAM; typ++ {
		if strings.HasPrefix(typ.String(), "Type(") {
			t.Errorf("type %d has no name", typ)
		}
	}
}
