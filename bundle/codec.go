package bundle

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math"

	"github.com/klauspost/compress/zstd"
)

// DefaultMaxSize is the decompressed payload limit of Read.
const DefaultMaxSize = 256 << 20

const (
	magic      = "\x7fBCB"
	headerSize = 16
	// maxWindow bounds the decoder's history buffer whatever the frame
	// header asks for; it is also the window Marshal compresses with.
	maxWindow = 8 << 20
)

// Marshal encodes the bundle. It fails with a *FormatError if Read would
// reject the result for any reason but Read's size limit.
func (b *Bundle) Marshal() ([]byte, error) {
	if err := b.validate(); err != nil {
		return nil, err
	}
	if err := checkBlobs(&b.Manifest, b.blobs); err != nil {
		return nil, err
	}
	raw := b.encode(true)
	if len(raw) > maxManifest {
		return nil, formatErr("manifest", ErrTooLarge, "%d bytes, limit %d", len(raw), maxManifest)
	}
	payload := appendPayload(nil, raw, &b.Manifest, b.blobs)

	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(maxWindow))
	if err != nil {
		panic("BUG: bundle: zstd options: " + err.Error())
	}
	defer enc.Close()
	out := make([]byte, headerSize, headerSize+len(payload)/2)
	out = enc.EncodeAll(payload, out)
	n := len(out) - headerSize
	if uint64(n) > math.MaxUint32 {
		return nil, formatErr("payload", ErrTooLarge, "%d compressed bytes", n)
	}
	copy(out, magic)
	binary.LittleEndian.PutUint16(out[4:], FormatVersion)
	binary.LittleEndian.PutUint16(out[6:], 0)
	binary.LittleEndian.PutUint32(out[8:], uint32(n))
	binary.LittleEndian.PutUint32(out[12:], checksum(out))
	return out, nil
}

// Read decodes a bundle, checking its structure, the manifest rules and
// every hash and size, with a decompressed size limit of DefaultMaxSize. It
// does not check the signature; see Verify.
func Read(data []byte) (*Bundle, error) {
	return ReadLimit(data, DefaultMaxSize)
}

// ReadLimit is Read with a limit on the decompressed payload size; limit <=
// 0 means DefaultMaxSize. A manifest announcing more is rejected before its
// blobs are decompressed, and decompression stops at the limit whatever the
// file claims. Memory use follows the bytes actually decompressed.
// The returned bundle shares no memory with data.
func ReadLimit(data []byte, limit int64) (*Bundle, error) {
	if limit <= 0 {
		limit = DefaultMaxSize
	}
	compressed, err := open(data)
	if err != nil {
		return nil, err
	}
	dec, err := zstd.NewReader(bytes.NewReader(compressed),
		zstd.WithDecoderConcurrency(1), // synchronous: no goroutines per Read
		zstd.WithDecoderLowmem(true),
		zstd.WithDecodeBuffersBelow(0), // never decode all at once
		zstd.WithDecoderMaxWindow(uint64(min(max(limit, zstd.MinWindowSize), maxWindow))))
	if err != nil {
		panic("BUG: bundle: zstd options: " + err.Error())
	}
	defer dec.Close()
	return parsePayload(&limitReader{r: dec, left: limit}, limit)
}

// open checks the header and returns the compressed payload.
func open(data []byte) ([]byte, error) {
	if n := min(len(data), len(magic)); string(data[:n]) != magic[:n] {
		return nil, formatErr("header.magic", ErrCorrupt, "not a bundle")
	}
	if len(data) < headerSize {
		return nil, formatErr("header", ErrTruncated, "%d of %d bytes", len(data), headerSize)
	}
	if v := binary.LittleEndian.Uint16(data[4:]); v != FormatVersion {
		return nil, formatErr("header.version", ErrVersion, "%d", v)
	}
	if f := binary.LittleEndian.Uint16(data[6:]); f != 0 {
		return nil, formatErr("header.flags", ErrCorrupt, "%#x", f)
	}
	want, have := uint64(binary.LittleEndian.Uint32(data[8:])), uint64(len(data)-headerSize)
	switch {
	case have < want:
		return nil, formatErr("payload", ErrTruncated, "%d of %d bytes", have, want)
	case have > want:
		return nil, formatErr("payload", ErrCorrupt, "%d bytes after the payload", have-want)
	}
	if sum := binary.LittleEndian.Uint32(data[12:]); sum != checksum(data) {
		return nil, formatErr("header.crc", ErrCorrupt, "crc32c %#08x, header says %#08x", checksum(data), sum)
	}
	return data[headerSize:], nil
}

// checksum returns the crc of a whole file: header before the crc field,
// then the payload.
func checksum(file []byte) uint32 {
	t := crc32.MakeTable(crc32.Castagnoli)
	return crc32.Update(crc32.Checksum(file[:12], t), t, file[headerSize:])
}

// errLimit reports a payload over the caller's limit; readErr turns it
// into ErrTooLarge.
var errLimit = errors.New("decompressed size limit exceeded")

// limitReader fails with errLimit once more than left bytes were read.
// Unlike io.LimitReader it tells "too long" apart from the end of the data.
type limitReader struct {
	r    io.Reader
	left int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, errLimit
	}
	if int64(len(p)) > l.left {
		p = p[:l.left+1] // one byte more, to see whether the data goes on
	}
	n, err := l.r.Read(p)
	if l.left -= int64(n); l.left < 0 {
		return 0, errLimit
	}
	return n, err
}

// readErr maps an error from reading the payload for field.
func readErr(field string, err error) error {
	switch {
	case errors.Is(err, errLimit):
		return formatErr("payload", ErrTooLarge, "%v", err)
	case errors.Is(err, zstd.ErrWindowSizeExceeded), errors.Is(err, zstd.ErrDecoderSizeExceeded):
		return formatErr("payload", ErrTooLarge, "zstd: %v", err)
	case err == io.EOF, errors.Is(err, io.ErrUnexpectedEOF):
		return formatErr(field, ErrTruncated, "")
	default:
		return formatErr("payload", ErrCorrupt, "zstd: %v", err)
	}
}
