package wire_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"runtime"
	"testing"

	"github.com/bcship/bcship/wire"
)

var testHeader = wire.Header{Flags: 0x0102, RequestID: 0x1122334455667788, Source: 0xdeadbeef}

func appendFrame(tb testing.TB, dst []byte, h wire.Header, m wire.Message) []byte {
	tb.Helper()
	b, err := wire.AppendFrame(dst, h, m)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestHeaderLayout(t *testing.T) {
	h := wire.Header{Type: wire.TypeInvoke, Flags: 0x0201, RequestID: 0x0807060504030201, Source: 0x0c0b0a09, Length: 0x100f0e0d}
	want := []byte{
		'B', 'C', 'S', 'H', // magic
		1,          // version
		3,          // type
		0x01, 0x02, // flags
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // request id
		0x09, 0x0a, 0x0b, 0x0c, // source
		0x0d, 0x0e, 0x0f, 0x10, // length
	}
	got := h.AppendTo(nil)
	if !bytes.Equal(got, want) || len(got) != wire.HeaderSize {
		t.Fatalf("got % x\nwant % x", got, want)
	}
	back, err := wire.ParseHeader(got)
	if err != nil || back != h {
		t.Fatalf("ParseHeader = %+v, %v", back, err)
	}
}

func TestHeaderErrors(t *testing.T) {
	valid := testHeader.AppendTo(nil)
	mutate := func(off int, v byte) []byte {
		b := bytes.Clone(valid)
		b[off] = v
		return b
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"short", valid[:wire.HeaderSize-1], wire.ErrTruncated},
		{"empty", nil, wire.ErrTruncated},
		{"magic", mutate(0, 'b'), wire.ErrBadMagic},
		{"version0", mutate(4, 0), wire.ErrVersion},
		{"version2", mutate(4, 2), wire.ErrVersion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := wire.ParseHeader(tc.b); !errors.Is(err, tc.want) {
				t.Fatalf("ParseHeader err = %v, want %v", err, tc.want)
			}
			if len(tc.b) == 0 {
				return
			}
			if _, err := wire.ReadFrame(bytes.NewReader(tc.b), 0, nil); !errors.Is(err, tc.want) {
				t.Fatalf("ReadFrame err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestReadFrameRoundTrip(t *testing.T) {
	var stream []byte
	ss := append(samples(), bigSamples()...)
	for i, tc := range ss {
		h := testHeader
		h.RequestID = uint64(i)
		stream = appendFrame(t, stream, h, tc.msg)
	}
	r := bytes.NewReader(stream)
	var buf []byte
	for i, tc := range ss {
		f, err := wire.ReadFrame(r, 0, buf)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		buf = f.Payload
		want := testHeader
		want.RequestID = uint64(i)
		want.Type = tc.msg.Type()
		want.Length = uint32(len(encode(t, tc.msg)))
		if f.Header != want {
			t.Fatalf("%s: header %+v, want %+v", tc.name, f.Header, want)
		}
		m, err := wire.Decode(f.Type, f.Payload)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !reflect.DeepEqual(m, tc.msg) {
			t.Fatalf("%s: got %+v", tc.name, m)
		}
	}
	if _, err := wire.ReadFrame(r, 0, buf); err != io.EOF {
		t.Fatalf("at end: err = %v, want io.EOF", err)
	}
}

func TestReadFrameReusesBuffer(t *testing.T) {
	frame := appendFrame(t, nil, testHeader, &wire.Invoke{Entry: "e", Arg: make([]byte, 64)})
	buf := make([]byte, 0, 1024)
	r := bytes.NewReader(nil)
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(frame)
		f, err := wire.ReadFrame(r, 0, buf)
		if err != nil || &f.Payload[0] != &buf[:1][0] {
			t.Fatalf("err = %v, or payload not in buf", err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocs per ReadFrame into a large enough buffer", allocs)
	}
}

func TestReadFrameMaxBoundary(t *testing.T) {
	frame := appendFrame(t, nil, testHeader, &wire.GetReply{Data: make([]byte, 100)})
	n := uint32(len(frame) - wire.HeaderSize)
	if _, err := wire.ReadFrame(bytes.NewReader(frame), n, nil); err != nil {
		t.Fatalf("payload at limit: %v", err)
	}
	f, err := wire.ReadFrame(bytes.NewReader(frame), n-1, nil)
	if !errors.Is(err, wire.ErrTooLarge) {
		t.Fatalf("payload over limit: err = %v", err)
	}
	// The header stays usable so the caller can answer the request.
	if f.RequestID != testHeader.RequestID || f.Type != wire.TypeGetReply || f.Payload != nil {
		t.Fatalf("frame with ErrTooLarge: %+v", f)
	}
}

// endless supplies a header followed by as many bytes as anyone reads, and
// counts them.
type endless struct {
	hdr  []byte
	read int64
}

func (e *endless) Read(p []byte) (int, error) {
	n := copy(p, e.hdr[min(e.read, int64(len(e.hdr))):])
	for i := n; i < len(p); i++ {
		p[i] = 0xaa
	}
	e.read += int64(len(p))
	return len(p), nil
}

func TestReadFrameOversizeBeforeAllocation(t *testing.T) {
	for _, limit := range []uint32{0, 1 << 20} {
		h := testHeader
		h.Type = wire.TypeShip
		h.Length = ^uint32(0) // 4 GiB, which the reader would happily supply
		r := &endless{hdr: h.AppendTo(nil)}
		buf := make([]byte, 0, 512)
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		_, err := wire.ReadFrame(r, limit, buf)
		runtime.ReadMemStats(&ms1)
		if !errors.Is(err, wire.ErrTooLarge) {
			t.Fatalf("err = %v, want ErrTooLarge", err)
		}
		if r.read != wire.HeaderSize {
			t.Fatalf("read %d bytes, want only the header", r.read)
		}
		if grew := ms1.TotalAlloc - ms0.TotalAlloc; grew > 64<<10 {
			t.Fatalf("allocated %d bytes", grew)
		}
	}
}

// A header under the limit that announces more than arrives must cost
// memory in proportion to what arrived, not to what was announced.
func TestReadFrameStallAllocatesLittle(t *testing.T) {
	h := testHeader
	h.Type = wire.TypeShip
	h.Length = 60 << 20
	stream := append(h.AppendTo(nil), make([]byte, 1000)...)
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	_, err := wire.ReadFrame(bytes.NewReader(stream), 0, nil)
	runtime.ReadMemStats(&ms1)
	if !errors.Is(err, wire.ErrTruncated) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v", err)
	}
	if grew := ms1.TotalAlloc - ms0.TotalAlloc; grew > 1<<20 {
		t.Fatalf("allocated %d bytes for a 1000-byte partial payload", grew)
	}
}

// Growing in steps must still deliver large payloads intact.
func TestReadFrameGrows(t *testing.T) {
	data := make([]byte, 3<<20+17)
	for i := range data {
		data[i] = byte(i * 7)
	}
	frame := appendFrame(t, nil, testHeader, &wire.GetReply{Data: data})
	f, err := wire.ReadFrame(io.MultiReader(bytes.NewReader(frame[:100]), bytes.NewReader(frame[100:])), 0, make([]byte, 0, 64))
	if err != nil {
		t.Fatal(err)
	}
	var m wire.GetReply
	if err := m.Decode(f.Payload); err != nil || !bytes.Equal(m.Data, data) {
		t.Fatalf("err = %v, data intact = %v", err, bytes.Equal(m.Data, data))
	}
}

// readers are the ways ReadFrame meets a stream: plain, buffered (the
// header read in place), and buffered in less than a header.
var readers = map[string]func(io.Reader) io.Reader{
	"plain":    func(r io.Reader) io.Reader { return r },
	"bufio":    func(r io.Reader) io.Reader { return bufio.NewReader(r) },
	"bufio-16": func(r io.Reader) io.Reader { return bufio.NewReaderSize(r, 16) },
}

func TestReadFrameTruncatedPrefixes(t *testing.T) {
	frame := appendFrame(t, nil, testHeader, &wire.Invoke{Hash: testHash, Entry: "e", Arg: []byte("abc")})
	for name, wrap := range readers {
		for i := range len(frame) {
			_, err := wire.ReadFrame(wrap(bytes.NewReader(frame[:i])), 0, nil)
			if i == 0 {
				if err != io.EOF {
					t.Fatalf("%s: empty stream: err = %v, want io.EOF", name, err)
				}
				continue
			}
			if !errors.Is(err, wire.ErrTruncated) || !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("%s: prefix %d/%d: err = %v", name, i, len(frame), err)
			}
		}
	}
}

// Frames back to back on a buffered stream, read without a buffer: each
// payload is right, and a fresh one is sized to its frame (a fresh
// allocation is memory the caches have not seen; it used to be 512 bytes
// whatever the frame).
func TestReadFrameBuffered(t *testing.T) {
	msgs := []wire.Message{
		&wire.Invoke{Hash: testHash, Entry: "chase", Arg: bytes.Repeat([]byte{7}, 64)},
		&wire.Result{OriginRequest: 9, Status: -1},
		&wire.PutReply{},
		&wire.GetReply{Data: bytes.Repeat([]byte{1}, 3000)},
	}
	var stream []byte
	for _, m := range msgs {
		stream = appendFrame(t, stream, testHeader, m)
	}
	for name, wrap := range readers {
		r := wrap(bytes.NewReader(stream))
		for i, want := range msgs {
			f, err := wire.ReadFrame(r, 0, nil)
			if err != nil {
				t.Fatalf("%s: frame %d: %v", name, i, err)
			}
			if f.Header.RequestID != testHeader.RequestID || f.Type != want.Type() {
				t.Fatalf("%s: frame %d: header %+v", name, i, f.Header)
			}
			if n := len(f.Payload); cap(f.Payload) > n+n/4+16 {
				t.Errorf("%s: frame %d: payload of %d bytes in a buffer of %d", name, i, n, cap(f.Payload))
			}
			got, err := wire.Decode(f.Type, f.Payload)
			if err != nil {
				t.Fatalf("%s: frame %d: %v", name, i, err)
			}
			if !bytes.Equal(encode(t, got), encode(t, want)) {
				t.Fatalf("%s: frame %d: got %+v, want %+v", name, i, got, want)
			}
		}
		if _, err := wire.ReadFrame(r, 0, nil); err != io.EOF {
			t.Fatalf("%s: after the last frame: err = %v, want io.EOF", name, err)
		}
	}
}

type failingReader struct{ err error }

func (r failingReader) Read([]byte) (int, error) { return 0, r.err }

func TestReadFramePassesReaderErrors(t *testing.T) {
	boom := errors.New("boom")
	if _, err := wire.ReadFrame(failingReader{boom}, 0, nil); err != boom {
		t.Fatalf("err = %v", err)
	}
	frame := appendFrame(t, nil, testHeader, &wire.GetReply{Data: []byte{1}})
	for name, wrap := range readers {
		if _, err := wire.ReadFrame(wrap(failingReader{boom}), 0, nil); err != boom {
			t.Fatalf("%s: err = %v", name, err)
		}
		r := io.MultiReader(bytes.NewReader(frame[:wire.HeaderSize]), failingReader{boom})
		if _, err := wire.ReadFrame(wrap(r), 0, nil); err != boom {
			t.Fatalf("%s: err = %v", name, err)
		}
	}
}

// The type is left to Decode, so a reader can answer an unknown type.
func TestReadFrameUnknownType(t *testing.T) {
	h := testHeader
	h.Type = 200
	f, err := wire.ReadFrame(bytes.NewReader(h.AppendTo(nil)), 0, nil)
	if err != nil || f.Type != 200 {
		t.Fatalf("f = %+v, err = %v", f, err)
	}
	if _, err := wire.Decode(f.Type, f.Payload); !errors.Is(err, wire.ErrUnknownType) {
		t.Fatalf("err = %v", err)
	}
}

func TestAppendFrameSetsTypeAndLength(t *testing.T) {
	h := wire.Header{Type: wire.TypeHello, Length: 12345, RequestID: 1}
	b := appendFrame(t, []byte("xx"), h, &wire.Result{Reply: []byte("hi")})
	got, err := wire.ParseHeader(b[2:])
	if err != nil {
		t.Fatal(err)
	}
	if got.Type != wire.TypeResult || int(got.Length) != len(b)-2-wire.HeaderSize {
		t.Fatalf("header %+v for %d payload bytes", got, len(b)-2-wire.HeaderSize)
	}
	if binary.LittleEndian.Uint32(b[2:]) != wire.Magic {
		t.Fatal("no magic")
	}
}

func TestAppendFrameAllocs(t *testing.T) {
	m := &wire.Invoke{Hash: testHash, Entry: "scan_sum", Arg: make([]byte, 64)}
	buf := make([]byte, 0, 256)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		buf, err = wire.AppendFrame(buf[:0], testHeader, m)
		if err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocs per AppendFrame into a reused buffer", allocs)
	}
}

func TestWriteFrame(t *testing.T) {
	var w bytes.Buffer
	m := &wire.PutReply{Status: wire.CodeNoRegion}
	buf, err := wire.WriteFrame(&w, nil, testHeader, m)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(w.Bytes(), buf) || !bytes.Equal(buf, appendFrame(t, nil, testHeader, m)) {
		t.Fatal("written bytes differ from AppendFrame's")
	}
	if _, err := wire.WriteFrame(&w, buf, testHeader, &wire.ErrorMsg{Text: string(make([]byte, wire.MaxString+1))}); !errors.Is(err, wire.ErrTooLarge) {
		t.Fatalf("err = %v", err)
	}
}
