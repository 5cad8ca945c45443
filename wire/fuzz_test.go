package wire_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/bcship/bcship/wire"
)

// FuzzDecode checks that no payload panics Decode, that m is nil exactly
// when err is not, and that a decoded message re-encodes to the very same
// bytes (encodings are canonical) and decodes again to an equal message.
func FuzzDecode(f *testing.F) {
	for _, tc := range samples() {
		b, err := tc.msg.AppendTo(nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(tc.msg.Type()), b)
	}
	f.Add(uint8(0), []byte{})
	f.Add(uint8(255), []byte{1, 2, 3})
	// Per type, the sample with the longest encoding: what a Decoder holds
	// before it decodes the input.
	fullOf := map[wire.Type][]byte{}
	for _, tc := range samples() {
		if b, _ := tc.msg.AppendTo(nil); len(b) > len(fullOf[tc.msg.Type()]) {
			fullOf[tc.msg.Type()] = b
		}
	}
	f.Fuzz(func(t *testing.T, typ uint8, payload []byte) {
		m, err := wire.Decode(wire.Type(typ), payload)
		if (m == nil) == (err == nil) {
			t.Fatalf("m = %v, err = %v", m, err)
		}
		if err != nil {
			var de *wire.DecodeError
			if !errors.As(err, &de) || de.Type != wire.Type(typ) {
				t.Fatalf("err = %v (%T)", err, err)
			}
			return
		}
		if m.Type() != wire.Type(typ) {
			t.Fatalf("Decode(%v) returned %v", wire.Type(typ), m.Type())
		}
		enc, err := m.AppendTo(nil)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if !bytes.Equal(enc, payload) {
			t.Fatalf("re-encoding differs:\n got % x\nwant % x", enc, payload)
		}
		m2, err := wire.Decode(m.Type(), enc)
		if err != nil {
			t.Fatalf("decode re-encoding: %v", err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("second decode differs:\n%+v\n%+v", m, m2)
		}
		// A Decoder that decoded a message of this type before gets the
		// same, and a Clone keeps it when the payload is overwritten.
		var d wire.Decoder
		if _, err := d.Decode(m.Type(), fullOf[m.Type()]); err != nil {
			t.Fatal(err)
		}
		buf := bytes.Clone(payload)
		dm, err := d.Decode(m.Type(), buf)
		if err != nil || !reflect.DeepEqual(dm, m) {
			t.Fatalf("Decoder: %+v, %v; Decode: %+v", dm, err, m)
		}
		c := wire.Clone(dm)
		for i := range buf {
			buf[i] ^= 0xff
		}
		if enc, _ := c.AppendTo(nil); !bytes.Equal(enc, payload) {
			t.Fatalf("the clone changed with the payload:\n got % x\nwant % x", enc, payload)
		}
	})
}

// FuzzReadFrame checks that no byte stream panics ReadFrame, that the
// payload limit holds, and that an accepted frame re-encodes to the bytes it
// was read from.
func FuzzReadFrame(f *testing.F) {
	var stream []byte
	for i, tc := range samples() {
		h := testHeader
		h.RequestID = uint64(i)
		b, err := wire.AppendFrame(nil, h, tc.msg)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint32(0))
		f.Add(b, uint32(len(b)-wire.HeaderSize))
		stream = append(stream, b...)
	}
	f.Add(stream, uint32(16))
	f.Add(stream, uint32(0))
	f.Fuzz(func(t *testing.T, data []byte, limit uint32) {
		limit %= 1 << 16 // a stream of a few KiB should be able to hit the limit
		// Once reusing the payload buffer; once buffered (a buffer of 16 to
		// 79 bytes: the header in place or copied out) with a fresh
		// payload per frame; and once as the TCP transport reads: whole
		// frames in place from its 64 KiB buffer (ParseFrame), the rest
		// (a truncated last frame) with ReadFrame.
		plain := readAll(t, bytes.NewReader(data), data, limit, true, false)
		buffered := readAll(t, bufio.NewReaderSize(bytes.NewReader(data), 16+int(limit%64)), data, limit, false, false)
		inPlace := readAll(t, bufio.NewReaderSize(bytes.NewReader(data), 64<<10), data, limit, false, true)
		if plain != buffered || plain != inPlace {
			t.Fatalf("%d frames read plainly, %d buffered, %d in place", plain, buffered, inPlace)
		}
	})
}

// readAll reads frames from r until an error, checks each against data, the
// stream r reads, and returns how many it read. reuse passes each payload
// back to ReadFrame as its buffer; inPlace (r is a *bufio.Reader) takes
// whole frames in place from its buffer with ParseFrame first.
func readAll(t *testing.T, r io.Reader, data []byte, limit uint32, reuse, inPlace bool) int {
	var buf []byte
	off := 0
	for frames := 0; ; frames++ {
		fr, ok := wire.Frame{}, false
		if inPlace {
			br := r.(*bufio.Reader)
			br.Peek(1) // fill the buffer, as the transport's poll does
			b, _ := br.Peek(br.Buffered())
			var n int
			if fr, n, ok = wire.ParseFrame(b, limit); ok {
				br.Discard(n)
			}
		}
		if !ok {
			var err error
			if fr, err = wire.ReadFrame(r, limit, buf); err != nil {
				return frames
			}
		}
		lim := limit
		if lim == 0 {
			lim = wire.DefaultMaxFrameSize
		}
		if fr.Length > lim || int(fr.Length) != len(fr.Payload) {
			t.Fatalf("length %d, payload %d, limit %d", fr.Length, len(fr.Payload), limit)
		}
		n := wire.HeaderSize + len(fr.Payload)
		enc := append(fr.Header.AppendTo(nil), fr.Payload...)
		if !bytes.Equal(enc, data[off:off+n]) {
			t.Fatalf("frame at %d re-encodes differently", off)
		}
		off += n
		// Decoding must not panic either; its result is FuzzDecode's business.
		_, _ = wire.Decode(fr.Type, fr.Payload)
		if reuse {
			buf = fr.Payload
		}
	}
}
