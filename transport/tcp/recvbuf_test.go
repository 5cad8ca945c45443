package tcp

import (
	"bytes"
	"io"
	"testing"

	"github.com/bcship/bcship/wire"
)

// chunked hands out data in reads of the sizes in steps (times 97),
// cycling, as a socket hands out what has arrived. A zero step is an empty
// poll when poll is set (sockReader) and the last read was not one, else a
// read of one byte.
type chunked struct {
	data  []byte
	steps []byte
	i     int
	poll  bool
	empty bool // the last read was an empty poll
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	step := 1
	if len(c.steps) > 0 {
		step = int(c.steps[c.i%len(c.steps)]) * 97
		c.i++
	}
	wasEmpty := c.empty
	c.empty = false
	switch {
	case step == 0 && c.poll && !wasEmpty:
		c.empty = true
		return 0, errNoData
	case step == 0:
		step = 1
	}
	n := copy(p, c.data[:min(step, len(c.data))])
	c.data = c.data[n:]
	return n, nil
}

// FuzzRecvBuf: read as the transport reads (a fill when the buffer is
// empty, frames whole in it in place, the rest through ReadFrame), a stream
// arriving in any chunks yields the frames a plain ReadFrame of it does,
// byte for byte, and fails where it fails.
func FuzzRecvBuf(f *testing.F) {
	var stream []byte
	for i, size := range []int{0, 1, 60, 4000, 70 << 10, 12} {
		fr, err := wire.AppendFrame(nil, wire.Header{RequestID: uint64(i)}, &wire.GetReply{Data: bytes.Repeat([]byte{byte(i)}, size)})
		if err != nil {
			f.Fatal(err)
		}
		stream = append(stream, fr...)
	}
	f.Add(stream, []byte{1})
	f.Add(stream, []byte{0, 3, 200, 1, 0, 255})
	f.Add(stream[:len(stream)-5], []byte{7})
	f.Fuzz(func(t *testing.T, data, steps []byte) {
		const limit = 128 << 10
		var want []wire.Frame
		r := bytes.NewReader(data)
		var wantErr error
		for {
			fr, err := wire.ReadFrame(r, limit, nil)
			if err != nil {
				wantErr = err
				break
			}
			want = append(want, fr)
		}
		src := &chunked{data: data, steps: steps}
		b := newRecvBuf(src)
		var got []wire.Frame
		var gotErr error
		for gotErr == nil {
			if b.buffered() == 0 {
				src.poll = true
				err := b.fill()
				src.poll = false
				if err == errNoData {
					continue
				} else if err != nil {
					gotErr = err
					break
				}
			}
			fr, ok := b.frame(limit)
			if ok {
				fr.Payload = bytes.Clone(fr.Payload) // the buffer is filled again
			} else {
				var err error
				if fr, err = wire.ReadFrame(b, limit, nil); err != nil {
					gotErr = err
					break
				}
			}
			got = append(got, fr)
		}
		if len(got) != len(want) {
			t.Fatalf("%d frames, want %d (errors %v, want %v)", len(got), len(want), gotErr, wantErr)
		}
		for i := range got {
			if got[i].Header != want[i].Header || !bytes.Equal(got[i].Payload, want[i].Payload) {
				t.Fatalf("frame %d differs", i)
			}
		}
		if (gotErr == io.EOF) != (wantErr == io.EOF) {
			t.Fatalf("ended with %v, want %v", gotErr, wantErr)
		}
	})
}
