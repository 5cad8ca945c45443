package wire_test

import (
	"bytes"
	"testing"

	"github.com/bcship/bcship/wire"
)

func benchInvoke() *wire.Invoke {
	return &wire.Invoke{
		Hash: testHash, Origin: 3, OriginRequest: 77, TTL: 8, Deadline: 1000,
		Entry: "scan_sum", Arg: bytes.Repeat([]byte{0xab}, 64),
	}
}

func BenchmarkInvokeEncode(b *testing.B) {
	m := benchInvoke()
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = wire.AppendFrame(buf[:0], testHeader, m); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkInvokeDecode decodes into a reused message; it allocates
// nothing (the entry name is interned).
func BenchmarkInvokeDecode(b *testing.B) {
	frame, err := wire.AppendFrame(nil, testHeader, benchInvoke())
	if err != nil {
		b.Fatal(err)
	}
	r := bytes.NewReader(nil)
	buf := make([]byte, 0, 256)
	var m wire.Invoke
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		r.Reset(frame)
		f, err := wire.ReadFrame(r, 0, buf)
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Decode(f.Payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInvokeRoundTrip is encode, read back and decode through the
// Decode dispatcher, as a node without a type switch would.
func BenchmarkInvokeRoundTrip(b *testing.B) {
	m := benchInvoke()
	var w bytes.Buffer
	wbuf := make([]byte, 0, 256)
	rbuf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		w.Reset()
		var err error
		if wbuf, err = wire.WriteFrame(&w, wbuf, testHeader, m); err != nil {
			b.Fatal(err)
		}
		f, err := wire.ReadFrame(&w, 0, rbuf)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := wire.Decode(f.Type, f.Payload); err != nil {
			b.Fatal(err)
		}
	}
}
