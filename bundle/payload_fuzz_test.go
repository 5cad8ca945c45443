package bundle

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"
)

// FuzzPayload fuzzes the decompressed payload, which FuzzBundleRead rarely
// reaches intact past zstd's own checksum.
func FuzzPayload(f *testing.F) {
	b := New("k", []string{"f", "g"}, 19)
	b.AddObject("x86_64-linux-gnu", []byte("obj"))
	b.AddObject("aarch64-linux-gnu", []byte("obj2"))
	b.SetBitcode([]byte("bc"))
	f.Add(appendPayload(nil, b.encode(true), &b.Manifest, b.blobs))
	if err := b.Sign(ed25519.NewKeyFromSeed(make([]byte, 32))); err != nil {
		f.Fatal(err)
	}
	f.Add(appendPayload(nil, b.encode(true), &b.Manifest, b.blobs))
	w := Wrap([]byte("raw"), "riscv64-linux-gnu")
	f.Add(appendPayload(nil, w.encode(true), &w.Manifest, w.blobs))

	f.Fuzz(func(t *testing.T, p []byte) {
		b, err := parsePayload(&limitReader{r: bytes.NewReader(p), left: 1 << 20}, 1<<20)
		if (b == nil) == (err == nil) {
			t.Fatalf("parsePayload returned %v and %v", b, err)
		}
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FormatError", err)
			}
			return
		}
		_ = b.Verify(nil)
		// Exactly one encoding: what parses must re-encode to the input.
		if got := appendPayload(nil, b.encode(true), &b.Manifest, b.blobs); !bytes.Equal(got, p) {
			t.Fatalf("payload re-encodes differently:\n%q\n%q", got, p)
		}
	})
}
