package tcp

import (
	"errors"
	"io"

	"github.com/bcship/bcship/wire"
)

// recvBuf is a connection's read buffer: the bytes read from its socket
// and not yet taken are b[r:w]. It does what bufio.Reader did here with
// fewer layers on the hot path, where a busy loop's every look is a fill
// and almost every frame is parsed in place (frame): measured with probes
// at the system calls, a node answering an invoke took 10–70 ns less from
// its recvfrom(2) to its sendto(2), the caller 0–30 ns less from its
// recvfrom(2) to the call's return. ReadFrame reads the frames that are
// not whole in the buffer through Read, Peek and Discard (wire's peeker).
type recvBuf struct {
	b    []byte
	r, w int
	src  io.Reader // the connection's sockReader
}

// recvBufSize is the read buffer of a connection: a read takes as much as
// the socket holds, up to this.
const recvBufSize = 64 << 10

func newRecvBuf(src io.Reader) *recvBuf {
	return &recvBuf{b: make([]byte, recvBufSize), src: src}
}

// buffered is how many bytes are read and not yet taken.
func (b *recvBuf) buffered() int { return b.w - b.r }

// fill reads once from the source into the free space, after moving the
// bytes not yet taken to the front (when the last frame was taken whole,
// as usual, there are none).
func (b *recvBuf) fill() error {
	if b.r > 0 {
		b.w = copy(b.b, b.b[b.r:b.w])
		b.r = 0
	}
	if b.w == len(b.b) {
		return errBufferFull
	}
	n, err := b.src.Read(b.b[b.w:])
	b.w += n
	return err
}

var errBufferFull = errors.New("tcp: read buffer full")

// frame takes the next frame when the buffer holds all of it (see
// wire.ParseFrame); its payload is valid until the buffer is filled again.
func (b *recvBuf) frame(maxPayload uint32) (wire.Frame, bool) {
	f, n, ok := wire.ParseFrame(b.b[b.r:b.w], maxPayload)
	if ok {
		b.r += n
	}
	return f, ok
}

// Read implements io.Reader: buffered bytes first; with none, a read as
// large as the buffer goes straight to the source.
func (b *recvBuf) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b.r == b.w {
		if len(p) >= len(b.b) {
			return b.src.Read(p)
		}
		if err := b.fill(); err != nil && b.r == b.w {
			return 0, err
		}
	}
	n := copy(p, b.b[b.r:b.w])
	b.r += n
	return n, nil
}

// Peek returns the next n bytes without taking them, reading until the
// buffer holds them.
func (b *recvBuf) Peek(n int) ([]byte, error) {
	if n > len(b.b) {
		return nil, errBufferFull
	}
	for b.w-b.r < n {
		if err := b.fill(); err != nil {
			return b.b[b.r:b.w], err
		}
	}
	return b.b[b.r : b.r+n], nil
}

// Discard takes the next n bytes, which must be buffered (Peek).
func (b *recvBuf) Discard(n int) (int, error) {
	if n > b.w-b.r {
		return 0, errors.New("tcp: discard past the buffered bytes")
	}
	b.r += n
	return n, nil
}
