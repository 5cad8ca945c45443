package shm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/bcship/bcship/wire"
)

// FuzzReader plays the peer: it writes arbitrary bytes into a ring in
// arbitrary pieces, and sometimes sets the head word to anything (a cut
// of 0xff). The reader must never panic or index outside the ring; every
// frame it delivers must be whole and within its limit; its errors match
// ErrCorrupt, and after one it is not used again (the connection drops).
func FuzzReader(f *testing.F) {
	var seed []byte
	for i := range uint64(5) {
		b, _ := wire.AppendFrame(nil, wire.Header{RequestID: i}, &wire.AM{Handler: "h", Arg: bytes.Repeat([]byte{byte(i)}, int(i)*40)})
		seed = append(seed, b...)
	}
	f.Add(uint8(0), uint16(200), []byte{7, 30, 1, 90}, seed)
	f.Add(uint8(2), uint16(50), []byte{200, 255, 0}, seed)
	f.Add(uint8(1), uint16(1000), []byte{0xff, 0, 0xff}, bytes.Repeat([]byte{0xee}, 100))
	f.Fuzz(func(t *testing.T, sizeExp uint8, maxFrame uint16, cuts, data []byte) {
		size := 64 << (sizeExp % 6)
		prod, cons := testRing(size)
		rd := &reader{r: cons, maxFrame: uint32(maxFrame)}
		var frames [][]byte
		var err error
		check := func() {
			for _, fr := range frames {
				h, herr := wire.ParseHeader(fr)
				if herr != nil || len(fr) != wire.HeaderSize+int(h.Length) || h.Length > uint32(maxFrame) {
					t.Fatalf("delivered a bad frame of %d bytes: %+v, %v", len(fr), h, herr)
				}
			}
			frames = frames[:0]
		}
		for i := 0; len(data) > 0 && err == nil; i++ {
			cut := 1
			if len(cuts) > 0 {
				cut = int(cuts[i%len(cuts)])
			}
			fed := false
			if cut == 0xff && len(data) >= 8 {
				// The peer scribbles over its head word.
				prod.head.Store(binary.LittleEndian.Uint64(data))
				data = data[8:]
				fed = true
			} else if s, _ := prod.space(); s > 0 {
				n := min(len(data), max(cut, 1), int(s))
				prod.put(data[:n])
				prod.publish()
				data = data[n:]
				fed = true
			}
			pos := cons.pos
			frames, _, _, err = rd.poll(frames, nil)
			check()
			if !fed && cons.pos == pos {
				// A scribbled head let the reader take bytes past the
				// producer's position, and the producer, seeing its tail
				// ahead of it, finds no space: it is broken, as such a
				// peer would be, and the stream ends here.
				break
			}
		}
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error %v does not match ErrCorrupt", err)
		}
	})
}

// FuzzDecodeCtrl: setup messages come from the peer. A message that
// decodes re-encodes to the same bytes (one encoding each).
func FuzzDecodeCtrl(f *testing.F) {
	for _, m := range []ctrlMsg{
		{Kind: ctrlOffer, Nonce: 7, Host: "boot:x", Name: "bcship-0123456789abcdef0123456789abcdef", Token: [16]byte{1, 2}},
		{Kind: ctrlAccept, Nonce: 1},
		{Kind: ctrlReject, Nonce: 2, Reason: reasonCollision},
	} {
		f.Add(m.encode())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeCtrl(b)
		if err != nil {
			if !errors.Is(err, ErrSetup) {
				t.Fatalf("error %v does not match ErrSetup", err)
			}
			return
		}
		if got := m.encode(); !bytes.Equal(got, b) {
			t.Fatalf("%x decodes to %+v, which encodes to %x", b, m, got)
		}
	})
}

// FuzzParseHeader: a segment header accepted from the peer describes a
// file that holds both rings exactly, with a power-of-two ring size in
// bounds.
func FuzzParseHeader(f *testing.F) {
	h := make([]byte, 64)
	binary.LittleEndian.PutUint64(h, segMagic)
	binary.LittleEndian.PutUint32(h[offVersion:], segVersion)
	binary.LittleEndian.PutUint32(h[offRingSize:], MinRingSize)
	f.Add(h, segmentSize(MinRingSize))
	f.Fuzz(func(t *testing.T, head []byte, size int64) {
		hdr := make([]byte, dataBase)
		copy(hdr, head)
		l, err := parseHeader(hdr, size)
		if err != nil {
			if !errors.Is(err, ErrBadSegment) {
				t.Fatalf("error %v does not match ErrBadSegment", err)
			}
			return
		}
		rs := l.ringSize
		if rs < MinRingSize || rs > MaxRingSize || rs&(rs-1) != 0 || segmentSize(rs) != size {
			t.Fatalf("accepted ring size %d in a file of %d bytes", rs, size)
		}
	})
}
