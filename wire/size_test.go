package wire

import (
	"bytes"
	"fmt"
	"testing"
)

// TestIntern: a string decoded again comes from the table, without an
// allocation, and equals its bytes whatever the table held.
func TestIntern(t *testing.T) {
	b := []byte("chase")
	if s := intern(b); s != "chase" {
		t.Fatalf("intern = %q", s)
	}
	if n := testing.AllocsPerRun(100, func() { _ = intern(b) }); n != 0 {
		t.Errorf("%v allocations for an interned string", n)
	}
	for i := range 1000 {
		want := fmt.Sprint("name", i)
		if s := intern([]byte(want)); s != want {
			t.Fatalf("intern = %q, want %q", s, want)
		}
	}
	if s := intern(bytes.Repeat([]byte{'x'}, internMax+1)); len(s) != internMax+1 {
		t.Fatalf("long string: %d bytes", len(s))
	}
}

// TestSizes: every sizer reports the exact length AppendTo appends, and
// AppendFrame into a nil buffer allocates once.
func TestSizes(t *testing.T) {
	arg := bytes.Repeat([]byte{7}, 100)
	for _, m := range []interface {
		Message
		sizer
	}{
		&Invoke{Hash: [32]byte{1}, Origin: 2, OriginRequest: 3, TTL: 4, Hops: 5, Flags: 6, Deadline: 7, Entry: "chase", Arg: arg},
		&Invoke{},
		&Forward{Entry: "e", Arg: arg[:32]},
		&Result{OriginRequest: 9, Status: -1, Hops: 3, Reply: arg[:32]},
		&Result{},
		NewError(CodeDeadline, 5, "chain deadline passed"),
		&Get{Offset: 64, Length: 16, Region: "chase"},
		&GetReply{Data: arg},
		&Put{Offset: 8, Region: "r", Data: arg},
		&PutReply{Status: CodeOutOfRange},
		&AM{Handler: "chase", Origin: 1, OriginRequest: 2, TTL: 3, Arg: arg[:32]},
	} {
		b, err := m.AppendTo(nil)
		if err != nil {
			t.Fatal(err)
		}
		if m.size() != len(b) {
			t.Errorf("%v: size %d, AppendTo appends %d bytes", m.Type(), m.size(), len(b))
		}
		if raceEnabled {
			continue // allocation counts: see raceEnabled
		}
		if n := testing.AllocsPerRun(10, func() {
			if _, err := AppendFrame(nil, Header{RequestID: 1}, m); err != nil {
				t.Fatal(err)
			}
		}); n != 1 {
			t.Errorf("%v: AppendFrame(nil) made %v allocations, want 1", m.Type(), n)
		}
	}
}
