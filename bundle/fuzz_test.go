package bundle_test

import (
	"crypto/ed25519"
	"testing"

	"github.com/bcship/bcship/bundle"
)

func FuzzBundleRead(f *testing.F) {
	signed, pub := signedFile(f)
	f.Add(signed)
	f.Add(marshal(f, testBundle(f)))
	f.Add(marshal(f, bundle.Wrap([]byte("\x7fELF"), "x86_64-linux-gnu")))
	f.Add(repack(f, unpack(f, signed))) // uncompressed zstd blocks
	f.Add([]byte("\x7fBCB\x01\x00\x00\x00"))
	f.Add([]byte{})
	trusted := []ed25519.PublicKey{pub}

	f.Fuzz(func(t *testing.T, data []byte) {
		checkRead(t, data, trusted)
		// Most mutations break the crc; fix it up so that they also reach
		// zstd and the payload parser.
		if len(data) >= 16 {
			fixed := append([]byte(nil), data...)
			reseal(fixed)
			checkRead(t, fixed, trusted)
		}
	})
}

// checkRead reads data and checks the results are consistent.
func checkRead(t *testing.T, data []byte, trusted []ed25519.PublicKey) {
	b, err := bundle.Read(data)
	if (b == nil) == (err == nil) {
		t.Fatalf("Read returned %v and %v", b, err)
	}
	if err != nil {
		checkTyped(t, err)
		return
	}
	_ = b.Verify(trusted)
	// Whatever Read accepts, Marshal writes and Read accepts again.
	again, err := b.Marshal()
	if err != nil {
		t.Fatalf("Marshal of a bundle Read accepted: %v", err)
	}
	c, err := bundle.Read(again)
	if err != nil {
		t.Fatalf("Read of a re-marshalled bundle: %v", err)
	}
	if c.Hash() != b.Hash() {
		t.Fatal("hash changed when re-marshalled")
	}
}
