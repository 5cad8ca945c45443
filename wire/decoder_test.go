package wire_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/bcship/bcship/wire"
)

// TestDecoderReuses: one Decoder decodes every sample, each after a
// message of the same type with every field set, and gets what Decode
// gets: nothing of the earlier message shows through. The second decode
// of a type reuses the first one's memory.
func TestDecoderReuses(t *testing.T) {
	var d wire.Decoder
	full := map[wire.Type][]byte{}
	for _, tc := range samples() {
		if b, _ := tc.msg.AppendTo(nil); len(b) > len(full[tc.msg.Type()]) {
			full[tc.msg.Type()] = b
		}
	}
	for _, tc := range samples() {
		typ := tc.msg.Type()
		first, err := d.Decode(typ, full[typ])
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		b, err := tc.msg.AppendTo(nil)
		if err != nil {
			t.Fatal(err)
		}
		m, err := d.Decode(typ, b)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if m != first {
			t.Errorf("%s: a new message, not the Decoder's own", tc.name)
		}
		if want, _ := wire.Decode(typ, b); !reflect.DeepEqual(m, want) {
			t.Errorf("%s: got %+v, want %+v", tc.name, m, want)
		}
	}
	if _, err := d.Decode(wire.Type(200), nil); !errors.Is(err, wire.ErrUnknownType) {
		t.Errorf("unknown type: %v", err)
	}
}

// TestCloneSharesNothing: a clone of a message decoded from a buffer is
// unchanged when the buffer is overwritten.
func TestCloneSharesNothing(t *testing.T) {
	for _, tc := range samples() {
		b, err := tc.msg.AppendTo(nil)
		if err != nil {
			t.Fatal(err)
		}
		buf := bytes.Clone(b)
		m, err := wire.Decode(tc.msg.Type(), buf)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		c := wire.Clone(m)
		if !reflect.DeepEqual(c, m) {
			t.Errorf("%s: clone %+v differs from %+v", tc.name, c, m)
		}
		for i := range buf {
			buf[i] ^= 0xff
		}
		if got, _ := c.AppendTo(nil); !bytes.Equal(got, b) {
			t.Errorf("%s: the clone changed with the buffer it was decoded from", tc.name)
		}
	}
}
