package wire

import (
	"encoding/binary"
	"hash/maphash"
	"math"
	"sync/atomic"
)

const (
	// MaxString bounds every string field. Names, triples, addresses and
	// error texts are short; the bound keeps a peer from making us allocate.
	MaxString = 4096
	// MaxTriples bounds HELLO's triple list, whose count is one byte.
	MaxTriples = math.MaxUint8
)

// decoder reads fields in order from a payload. The first failure sticks:
// later reads return zero values, so message decoders read straight through
// and check once in finish.
type decoder struct {
	b   []byte
	typ Type
	err error
}

func (d *decoder) fail(field string, err error) {
	if d.err == nil {
		d.err = &DecodeError{Type: d.typ, Field: field, Err: err}
	}
}

// take returns the next n bytes, capped so that appending to a decoded
// field cannot overwrite the fields after it.
func (d *decoder) take(field string, n int) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.b) {
		d.fail(field, ErrTruncated)
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) u8(field string) uint8 {
	if p := d.take(field, 1); p != nil {
		return p[0]
	}
	return 0
}

func (d *decoder) u16(field string) uint16 {
	if p := d.take(field, 2); p != nil {
		return binary.LittleEndian.Uint16(p)
	}
	return 0
}

func (d *decoder) u32(field string) uint32 {
	if p := d.take(field, 4); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (d *decoder) u64(field string) uint64 {
	if p := d.take(field, 8); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}

func (d *decoder) hash(field string) (h [32]byte) {
	copy(h[:], d.take(field, len(h)))
	return h
}

// str reads a u16-length-prefixed string of at most MaxString bytes.
func (d *decoder) str(field string) string {
	n := int(d.u16(field))
	if d.err == nil && n > MaxString {
		d.fail(field, ErrTooLarge)
	}
	return intern(d.take(field, n))
}

// internTab caches short strings decoded lately: entry, handler and region
// names repeat in every INVOKE, FORWARD, AM and GET, and a hit costs a hash
// and a compare instead of an allocation. A slot holds whichever string
// was stored last; a collision only costs a miss.
var (
	internTab  [256]atomic.Pointer[string]
	internSeed = maphash.MakeSeed()
)

// internMax bounds the strings worth interning.
const internMax = 64

func intern(b []byte) string {
	if len(b) == 0 || len(b) > internMax {
		return string(b)
	}
	slot := &internTab[maphash.Bytes(internSeed, b)%uint64(len(internTab))]
	if p := slot.Load(); p != nil && *p == string(b) {
		return *p
	}
	s := string(b)
	slot.Store(&s)
	return s
}

// bytes reads a u32-length-prefixed byte field. It aliases the payload and
// is nil when empty, so decode(encode(m)) compares equal to m with
// reflect.DeepEqual when m's empty fields are nil.
func (d *decoder) bytes(field string) []byte {
	n := d.u32(field)
	if d.err != nil {
		return nil
	}
	// Compare before converting: int(n) can be negative on 32-bit targets.
	if uint64(n) > uint64(len(d.b)) {
		d.fail(field, ErrTruncated)
		return nil
	}
	if n == 0 {
		return nil
	}
	return d.take(field, int(n))
}

// strs reads a u8-counted list of strings.
func (d *decoder) strs(field string) []string {
	n := int(d.u8(field))
	if d.err != nil || n == 0 {
		return nil
	}
	// Each string needs at least its 2-byte prefix: check before allocating.
	if 2*n > len(d.b) {
		d.fail(field, ErrTruncated)
		return nil
	}
	v := make([]string, n)
	for i := range v {
		v[i] = d.str(field)
	}
	return v
}

// finish reports the first error, or ErrMalformed if bytes are left over.
func (d *decoder) finish() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("", ErrMalformed)
	}
	return d.err
}

// Encoding never fails once the message has passed its checks, so the
// append helpers below do not check; the check helpers run first.

func checkStr(t Type, field, s string) error {
	if len(s) > MaxString {
		return &EncodeError{Type: t, Field: field, Err: ErrTooLarge}
	}
	return nil
}

func checkBytes(t Type, field string, p []byte) error {
	if uint64(len(p)) > math.MaxUint32 {
		return &EncodeError{Type: t, Field: field, Err: ErrTooLarge}
	}
	return nil
}

func checkStrs(t Type, field string, v []string) error {
	if len(v) > MaxTriples {
		return &EncodeError{Type: t, Field: field, Err: ErrTooLarge}
	}
	for _, s := range v {
		if err := checkStr(t, field, s); err != nil {
			return err
		}
	}
	return nil
}

func appendU16(b []byte, v uint16) []byte { return binary.LittleEndian.AppendUint16(b, v) }
func appendU32(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }
func appendU64(b []byte, v uint64) []byte { return binary.LittleEndian.AppendUint64(b, v) }

func appendStr(b []byte, s string) []byte {
	return append(appendU16(b, uint16(len(s))), s...)
}

func appendBytes(b []byte, p []byte) []byte {
	return append(appendU32(b, uint32(len(p))), p...)
}

func appendStrs(b []byte, v []string) []byte {
	b = append(b, uint8(len(v)))
	for _, s := range v {
		b = appendStr(b, s)
	}
	return b
}
