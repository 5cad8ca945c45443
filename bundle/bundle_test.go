package bundle_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/bcship/bcship/bundle"
)

func TestRoundTrip(t *testing.T) {
	b := testBundle(t)
	got, err := bundle.Read(marshal(t, b))
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "saxpy" || got.LLVMVersion != 19 || got.Format != bundle.FormatVersion {
		t.Errorf("manifest %+v", got.Manifest)
	}
	if !slices.Equal(got.Entries, []string{"dot", "saxpy"}) {
		t.Errorf("entries %q", got.Entries)
	}
	if !got.Created.Equal(created) {
		t.Errorf("created %v, want %v", got.Created, created)
	}
	if len(got.Objects) != 2 || got.Objects[0].Triple != "aarch64-linux-gnu" {
		t.Errorf("objects %+v", got.Objects)
	}
	for _, triple := range []string{"x86_64-linux-gnu", "aarch64-linux-gnu"} {
		want, _ := b.Object(triple)
		obj, ok := got.Object(triple)
		if !ok || !bytes.Equal(obj, want) {
			t.Errorf("Object(%s) = %q, %v; want %q", triple, obj, ok, want)
		}
	}
	if _, ok := got.Object("riscv64-linux-gnu"); ok {
		t.Error("Object(riscv64-linux-gnu) found")
	}
	bc, ok := got.Bitcode()
	if !ok || !bytes.HasPrefix(bc, []byte("BC\xc0\xde")) {
		t.Errorf("Bitcode() = %q, %v", bc, ok)
	}
	if got.Hash() != b.Hash() {
		t.Error("hash changed in a round trip")
	}
	if got.Signature != nil {
		t.Error("unsigned bundle read back with a signature")
	}
}

func TestHashStable(t *testing.T) {
	a := testBundle(t)

	// Same content added in the other order, with entries in another order.
	b := bundle.New("saxpy", []string{"dot", "saxpy"}, 19)
	b.Created = created
	b.SetBitcode([]byte("BC\xc0\xde bitcode for saxpy and dot"))
	b.AddObject("aarch64-linux-gnu", []byte("\x7fELF aarch64 object for saxpy and dot"))
	b.AddObject("x86_64-linux-gnu", []byte("replaced below"))
	b.AddObject("x86_64-linux-gnu", []byte("\x7fELF x86_64 object for saxpy and dot"))

	want := marshal(t, a)
	for range 20 { // map iteration order must not reach the encoding
		if got := marshal(t, b); !bytes.Equal(got, want) {
			t.Fatal("same content, different bytes")
		}
	}
	if a.Hash() != b.Hash() {
		t.Fatal("same content, different hash")
	}
	// Editing the exported fields in any order gives the same hash too.
	b.Entries = []string{"saxpy", "dot"}
	slices.Reverse(b.Objects)
	if a.Hash() != b.Hash() || !bytes.Equal(marshal(t, b), want) {
		t.Fatal("field order leaked into the encoding")
	}

	// Reading and writing again gives the same bytes.
	r, err := bundle.Read(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(marshal(t, r), want) {
		t.Fatal("Marshal(Read(x)) != x")
	}

	// Any change to the content changes the hash.
	c := testBundle(t)
	c.Created = created.Add(time.Second)
	d := testBundle(t)
	d.AddObject("x86_64-linux-gnu", []byte("other"))
	for _, other := range []*bundle.Bundle{c, d} {
		if other.Hash() == a.Hash() {
			t.Error("different content, same hash")
		}
	}
}

func TestReplacedBlobIsDropped(t *testing.T) {
	b := testBundle(t)
	b.AddObject("x86_64-linux-gnu", []byte("new object"))
	b.SetBitcode(nil)
	r, err := bundle.Read(marshal(t, b))
	if err != nil {
		t.Fatal(err)
	}
	if r.Manifest.Bitcode != nil {
		t.Error("bitcode survived SetBitcode(nil)")
	}
	if obj, _ := r.Object("x86_64-linux-gnu"); string(obj) != "new object" {
		t.Errorf("object %q", obj)
	}
}

func TestSharedBlob(t *testing.T) {
	// Two triples with identical objects share one blob.
	b := bundle.New("k", []string{"k"}, 0)
	b.AddObject("x86_64-linux-gnu", []byte("same"))
	b.AddObject("x86_64-linux-musl", []byte("same"))
	r, err := bundle.Read(marshal(t, b))
	if err != nil {
		t.Fatal(err)
	}
	for _, triple := range []string{"x86_64-linux-gnu", "x86_64-linux-musl"} {
		if obj, ok := r.Object(triple); !ok || string(obj) != "same" {
			t.Errorf("Object(%s) = %q, %v", triple, obj, ok)
		}
	}
}

func TestObjectIsACopy(t *testing.T) {
	obj := []byte("object")
	b := bundle.Wrap(obj, "x86_64-linux-gnu")
	obj[0] = 'X'
	got, _ := b.Object("x86_64-linux-gnu")
	got[1] = 'X'
	if again, _ := b.Object("x86_64-linux-gnu"); string(again) != "object" {
		t.Fatalf("bundle content changed to %q", again)
	}
}

func TestWrap(t *testing.T) {
	obj := []byte("\x7fELF raw object")
	a, b := bundle.Wrap(obj, "x86_64-linux-gnu"), bundle.Wrap(obj, "x86_64-linux-gnu")
	if a.Hash() != b.Hash() {
		t.Error("wrapping the same object twice gave different hashes")
	}
	r, err := bundle.Read(marshal(t, a))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Objects) != 1 || len(r.Entries) != 0 || r.Manifest.Bitcode != nil {
		t.Errorf("manifest %+v", r.Manifest)
	}
	if got, ok := r.Object("x86_64-linux-gnu"); !ok || !bytes.Equal(got, obj) {
		t.Errorf("Object = %q, %v", got, ok)
	}
	if c := bundle.Wrap(obj, "aarch64-linux-gnu"); c.Hash() == a.Hash() {
		t.Error("triple is not part of the hash")
	}
}

func TestMarshalRejects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*bundle.Bundle)
		field string
		err   error
	}{
		{"empty name", func(b *bundle.Bundle) { b.Name = "" }, "name", bundle.ErrInvalid},
		{"name with space", func(b *bundle.Bundle) { b.Name = "a b" }, "name", bundle.ErrInvalid},
		{"bad entry", func(b *bundle.Bundle) { b.Entries = []string{"a\"b"} }, "entries[0]", bundle.ErrInvalid},
		{"duplicate entry", func(b *bundle.Bundle) { b.Entries = []string{"a", "a"} }, "entries[1]", bundle.ErrInvalid},
		{"too many entries", func(b *bundle.Bundle) { b.Entries = make([]string, 5000) }, "entries", bundle.ErrTooLarge},
		{"manifest too large", func(b *bundle.Bundle) {
			b.Entries = nil
			for i := range 4096 {
				b.Entries = append(b.Entries, fmt.Sprintf("%0256d", i))
			}
		}, "manifest", bundle.ErrTooLarge},
		{"bad triple", func(b *bundle.Bundle) { b.AddObject("x86 64", []byte("o")) }, "objects[1].triple", bundle.ErrInvalid},
		{"empty object", func(b *bundle.Bundle) { b.AddObject("riscv64", nil) }, "objects[1].size", bundle.ErrInvalid},
		{"no code", func(b *bundle.Bundle) { b.Objects = nil; b.SetBitcode(nil) }, "objects", bundle.ErrInvalid},
		{"bitcode without llvm", func(b *bundle.Bundle) { b.LLVMVersion = 0 }, "llvm", bundle.ErrInvalid},
		{"negative llvm", func(b *bundle.Bundle) { b.LLVMVersion = -1 }, "llvm", bundle.ErrInvalid},
		{"version", func(b *bundle.Bundle) { b.Format = 2 }, "format", bundle.ErrVersion},
		{"edited size", func(b *bundle.Bundle) { b.Objects[0].Size++ }, "objects[0].size", bundle.ErrCorrupt},
		{"edited hash", func(b *bundle.Bundle) { b.Objects[1].SHA256[0]++ }, "objects[1].sha256", bundle.ErrCorrupt},
		{"duplicate triple", func(b *bundle.Bundle) {
			b.Objects = append(b.Objects, b.Objects[0])
		}, "objects[2].triple", bundle.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := testBundle(t)
			tc.edit(b)
			_, err := b.Marshal()
			var fe *bundle.FormatError
			if !errors.As(err, &fe) || fe.Field != tc.field || !errors.Is(err, tc.err) {
				t.Fatalf("Marshal: %v, want %s: %v", err, tc.field, tc.err)
			}
		})
	}
}

func TestReadLimit(t *testing.T) {
	data := marshal(t, testBundle(t))
	if _, err := bundle.ReadLimit(data, 100); !errors.Is(err, bundle.ErrTooLarge) {
		t.Fatalf("ReadLimit(100): %v, want ErrTooLarge", err)
	}
	if _, err := bundle.ReadLimit(data, 1<<20); err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int64{0, -1, math.MaxInt64} {
		if _, err := bundle.ReadLimit(data, limit); err != nil {
			t.Fatalf("ReadLimit(%d): %v", limit, err)
		}
	}
}

func TestFormatErrorMessage(t *testing.T) {
	_, err := bundle.Read([]byte("\x7fBCB\x02\x00" + "0123456789"))
	if got, want := err.Error(), "bundle: header.version: unsupported format version: 2"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
