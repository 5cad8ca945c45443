package hostrt

import (
	"encoding/binary"
	"errors"
	"testing"
	"unsafe"
)

// outboxRecord encodes one record as rt.c's bc_* helpers write it.
func outboxRecord(op Op, node uint32, off, n uint64, a, b []byte) []byte {
	le := binary.LittleEndian
	r := make([]byte, recHeader, recHeader+len(a)+len(b)+7)
	le.PutUint32(r, uint32(op))
	le.PutUint32(r[4:], node)
	le.PutUint64(r[8:], off)
	le.PutUint64(r[16:], n)
	le.PutUint32(r[24:], uint32(len(a)))
	le.PutUint32(r[28:], uint32(len(b)))
	r = append(append(r, a...), b...)
	for len(r)%8 != 0 {
		r = append(r, 0)
	}
	return r
}

// FuzzParseOutbox feeds ParseOutbox what a kernel may leave in its outbox
// (a buggy or hostile kernel writes anything): it never panics, every
// action it returns lies inside the outbox, and a failure is ErrOutbox.
func FuzzParseOutbox(f *testing.F) {
	f.Add(outboxRecord(OpReply, 0, 0, 0, []byte("answer"), nil))
	f.Add(append(outboxRecord(OpForward, 3, 0, 0, []byte("chase"), []byte{1, 2, 3, 4}),
		outboxRecord(OpLog, 0, 0, 0, []byte("hop"), nil)...))
	f.Add(outboxRecord(OpGet, 2, 4096, 16, []byte("region"), []byte("then")))
	f.Add([]byte{1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		acts, err := ParseOutbox(b)
		if err != nil && !errors.Is(err, ErrOutbox) {
			t.Fatalf("error %v does not match ErrOutbox", err)
		}
		if len(b) == 0 {
			return
		}
		lo, hi := uintptr(unsafe.Pointer(&b[0])), uintptr(unsafe.Pointer(&b[0]))+uintptr(len(b))
		inside := func(p []byte) bool {
			if len(p) == 0 {
				return true
			}
			s := uintptr(unsafe.Pointer(&p[0]))
			return s >= lo && s+uintptr(len(p)) <= hi && cap(p) == len(p)
		}
		total := 0
		for i, a := range acts {
			if a.Op < OpReply || a.Op > OpLog {
				t.Fatalf("action %d: op %d out of range", i, a.Op)
			}
			if !inside(a.A) || !inside(a.B) {
				t.Fatalf("action %d: its bytes are not inside the outbox (or can grow into it)", i)
			}
			total += recHeader + len(a.A) + len(a.B)
		}
		if total > len(b) {
			t.Fatalf("actions cover %d bytes of a %d-byte outbox", total, len(b))
		}
	})
}
