package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
)

const (
	// Magic opens every frame: "BCSH" on the wire.
	Magic uint32 = 'B' | 'C'<<8 | 'S'<<16 | 'H'<<24
	// Version is the protocol version this package speaks.
	Version uint8 = 1
	// HeaderSize is the fixed size of a frame header.
	HeaderSize = 24
	// DefaultMaxFrameSize is the payload limit ReadFrame applies when given 0.
	DefaultMaxFrameSize uint32 = 64 << 20
)

// Header field offsets; see the table in doc.go.
const (
	offMagic     = 0
	offVersion   = 4
	offType      = 5
	offFlags     = 6
	offRequestID = 8
	offSource    = 16
	offLength    = 20
)

// growStep is the first allocation when a payload does not fit the caller's
// buffer; the buffer then at most doubles per read.
const growStep = 64 << 10

// Header is a frame header. The version is not a field: ParseHeader rejects
// every version but Version, and AppendTo always writes it.
type Header struct {
	Type      Type
	Flags     uint16 // carried unchanged; their meaning belongs to the transport
	RequestID uint64 // chosen by the requester, echoed by replies
	Source    uint32 // node id of the sender of this frame (not the origin)
	Length    uint32 // payload length in bytes
}

// AppendTo appends the HeaderSize-byte encoding of h to dst.
func (h Header) AppendTo(dst []byte) []byte {
	dst = appendU32(dst, Magic)
	dst = append(dst, Version, byte(h.Type))
	dst = appendU16(dst, h.Flags)
	dst = appendU64(dst, h.RequestID)
	dst = appendU32(dst, h.Source)
	return appendU32(dst, h.Length)
}

// ParseHeader decodes the header at the start of b. It checks magic and
// version but not the type, so that a reader can still answer a request of
// a type it does not know with an ERROR naming the request id.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("wire: header of %d bytes: %w", len(b), ErrTruncated)
	}
	if m := binary.LittleEndian.Uint32(b[offMagic:]); m != Magic {
		return Header{}, fmt.Errorf("%w %#08x", ErrBadMagic, m)
	}
	if v := b[offVersion]; v != Version {
		return Header{}, fmt.Errorf("%w %d (want %d)", ErrVersion, v, Version)
	}
	return Header{
		Type:      Type(b[offType]),
		Flags:     binary.LittleEndian.Uint16(b[offFlags:]),
		RequestID: binary.LittleEndian.Uint64(b[offRequestID:]),
		Source:    binary.LittleEndian.Uint32(b[offSource:]),
		Length:    binary.LittleEndian.Uint32(b[offLength:]),
	}, nil
}

// Frame is a header and its payload, undecoded.
type Frame struct {
	Header
	Payload []byte
}

// ReadFrame reads one frame from r. Payloads longer than maxPayload (0 means
// DefaultMaxFrameSize) are refused from the header, before anything is
// allocated for them.
//
// buf is reused when large enough: the returned Payload then aliases it, and
// passing f.Payload back as buf on the next call reuses its storage. A
// payload that does not fit grows a new buffer with the bytes that actually
// arrive, so a peer announcing a large frame and then stalling costs little.
//
// ReadFrame returns io.EOF if r ends before the first header byte, and an
// error matching both ErrTruncated and io.ErrUnexpectedEOF if it ends inside
// a frame. On ErrTooLarge the returned Header is valid, so the caller can
// answer the request, but the payload is still unread: discard Length bytes
// or drop the connection. Other errors from r are returned unchanged.
func ReadFrame(r io.Reader, maxPayload uint32, buf []byte) (Frame, error) {
	if maxPayload == 0 {
		maxPayload = DefaultMaxFrameSize
	}
	h, err := readHeader(r, buf)
	if err != nil {
		return Frame{}, err
	}
	if h.Length > maxPayload {
		return Frame{Header: h}, fmt.Errorf("wire: %v payload of %d bytes: %w (limit %d)",
			h.Type, h.Length, ErrTooLarge, maxPayload)
	}
	// Without a buffer the payload gets exactly its own length: a fresh
	// allocation per frame is memory the caches have not seen, so it
	// should be no larger than the frame.
	p, err := readPayload(r, buf[:0], h.Length)
	if err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			err = fmt.Errorf("wire: %v payload at byte %d of %d: %w: %w",
				h.Type, len(p), h.Length, ErrTruncated, io.ErrUnexpectedEOF)
		}
		return Frame{}, err
	}
	return Frame{Header: h, Payload: p}, nil
}

// ParseFrame takes a frame in place from a reader's buffer: the frame at
// the start of b when b holds all of it and its header is valid and within
// maxPayload (0 means DefaultMaxFrameSize), and its size n. The payload
// aliases b. Otherwise ok is false, and ReadFrame, reading on, reports the
// error or waits for the rest.
func ParseFrame(b []byte, maxPayload uint32) (f Frame, n int, ok bool) {
	if maxPayload == 0 {
		maxPayload = DefaultMaxFrameSize
	}
	if len(b) < HeaderSize {
		return Frame{}, 0, false
	}
	h, err := ParseHeader(b)
	if err != nil || h.Length > maxPayload || uint64(len(b)) < HeaderSize+uint64(h.Length) {
		return Frame{}, 0, false
	}
	n = HeaderSize + int(h.Length)
	return Frame{Header: h, Payload: b[HeaderSize:n:n]}, n, true
}

// peeker is a reader that lends its buffered bytes (bufio.Reader).
type peeker interface {
	Peek(n int) ([]byte, error)
	Discard(n int) (int, error)
}

// readHeader reads and parses a frame header: in buf when it has room, in
// place when r lends its buffer, else in a header-sized allocation.
func readHeader(r io.Reader, buf []byte) (Header, error) {
	if cap(buf) < HeaderSize {
		if p, ok := r.(peeker); ok {
			hb, err := p.Peek(HeaderSize)
			switch {
			case len(hb) == HeaderSize:
				h, err := ParseHeader(hb)
				if _, derr := p.Discard(HeaderSize); err == nil {
					err = derr
				}
				return h, err
			case err == io.EOF && len(hb) > 0:
				return Header{}, fmt.Errorf("wire: header: %w: %w", ErrTruncated, io.ErrUnexpectedEOF)
			case err != nil && !errors.Is(err, bufio.ErrBufferFull):
				return Header{}, err
			}
			// A buffer smaller than a header: copy it out below.
		}
		buf = make([]byte, HeaderSize)
	}
	hb := buf[:HeaderSize]
	if _, err := io.ReadFull(r, hb); err != nil {
		if err == io.ErrUnexpectedEOF {
			err = fmt.Errorf("wire: header: %w: %w", ErrTruncated, err)
		}
		return Header{}, err
	}
	return ParseHeader(hb)
}

func readPayload(r io.Reader, buf []byte, length uint32) ([]byte, error) {
	if uint64(length) <= uint64(cap(buf)) {
		buf = buf[:length]
		_, err := io.ReadFull(r, buf)
		return buf, err
	}
	if uint64(length) > math.MaxInt {
		return buf, fmt.Errorf("wire: payload of %d bytes: %w", length, ErrTooLarge)
	}
	n := int(length)
	for len(buf) < n {
		step := min(n-len(buf), max(len(buf), growStep))
		buf = slices.Grow(buf, step)
		got, err := io.ReadFull(r, buf[len(buf):len(buf)+step])
		buf = buf[:len(buf)+got]
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// AppendFrame appends a frame carrying m to dst. h supplies Flags, RequestID
// and Source; Type and Length are taken from m. It allocates only to grow
// dst, at most once for the messages of the hot paths (INVOKE, FORWARD,
// RESULT, ERROR, AM, GET, PUT and their replies). On error dst is returned
// unchanged.
func AppendFrame(dst []byte, h Header, m Message) ([]byte, error) {
	if s, ok := m.(sizer); ok {
		dst = slices.Grow(dst, HeaderSize+s.size())
	}
	start := len(dst)
	h.Type = m.Type()
	h.Length = 0
	dst = h.AppendTo(dst)
	dst, err := m.AppendTo(dst)
	if err != nil {
		return dst[:start], err
	}
	n := len(dst) - start - HeaderSize
	if uint64(n) > math.MaxUint32 {
		return dst[:start], &EncodeError{Type: h.Type, Err: ErrTooLarge}
	}
	binary.LittleEndian.PutUint32(dst[start+offLength:], uint32(n))
	return dst, nil
}

// WriteFrame encodes a frame carrying m into buf[:0] and writes it to w with
// one Write. It returns the buffer for reuse.
func WriteFrame(w io.Writer, buf []byte, h Header, m Message) ([]byte, error) {
	buf, err := AppendFrame(buf[:0], h, m)
	if err != nil {
		return buf, err
	}
	_, err = w.Write(buf)
	return buf, err
}
