package bundle_test

import (
	"crypto/ed25519"
	"errors"
	"testing"

	"github.com/bcship/bcship/bundle"
)

func TestSignVerify(t *testing.T) {
	file, pub := signedFile(t)
	other, _ := testKey(2)
	b, err := bundle.Read(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Verify([]ed25519.PublicKey{other, pub}); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !b.Signature.PublicKey.Equal(pub) {
		t.Error("signer key not kept")
	}
}

func TestSignKeepsHash(t *testing.T) {
	b := testBundle(t)
	before := b.Hash()
	_, priv := testKey(1)
	if err := b.Sign(priv); err != nil {
		t.Fatal(err)
	}
	if b.Hash() != before {
		t.Fatal("signing changed the code hash")
	}
	r, err := bundle.Read(marshal(t, b))
	if err != nil {
		t.Fatal(err)
	}
	if r.Hash() != before {
		t.Fatal("signed bundle read back with another hash")
	}
}

func TestVerifyErrors(t *testing.T) {
	pub, priv := testKey(1)
	other, _ := testKey(2)
	trusted := []ed25519.PublicKey{pub}

	unsigned := testBundle(t)
	if err := unsigned.Verify(trusted); !errors.Is(err, bundle.ErrUnsigned) {
		t.Errorf("unsigned: %v, want ErrUnsigned", err)
	}

	signed := testBundle(t)
	if err := signed.Sign(priv); err != nil {
		t.Fatal(err)
	}
	for name, keys := range map[string][]ed25519.PublicKey{
		"no keys":   nil,
		"other key": {other},
		"short key": {pub[:16]},
	} {
		if err := signed.Verify(keys); !errors.Is(err, bundle.ErrUntrusted) {
			t.Errorf("%s: %v, want ErrUntrusted", name, err)
		}
	}

	// A manifest changed after signing.
	tampered := testBundle(t)
	if err := tampered.Sign(priv); err != nil {
		t.Fatal(err)
	}
	tampered.Name = "other"
	if err := tampered.Verify(trusted); !errors.Is(err, bundle.ErrBadSignature) {
		t.Errorf("tampered: %v, want ErrBadSignature", err)
	}
	// The same change after a round trip through a file.
	r, err := bundle.Read(marshal(t, tampered))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Verify(trusted); !errors.Is(err, bundle.ErrBadSignature) {
		t.Errorf("tampered file: %v, want ErrBadSignature", err)
	}

	// A signature by another key, claiming to be from a trusted one.
	forged := testBundle(t)
	_, otherPriv := testKey(2)
	if err := forged.Sign(otherPriv); err != nil {
		t.Fatal(err)
	}
	forged.Signature.PublicKey = pub
	if err := forged.Verify(trusted); !errors.Is(err, bundle.ErrBadSignature) {
		t.Errorf("forged: %v, want ErrBadSignature", err)
	}

	// Malformed in-memory signatures fail without a panic.
	forged.Signature = &bundle.Signature{PublicKey: pub[:5], Value: []byte{1}}
	if err := forged.Verify(trusted); !errors.Is(err, bundle.ErrBadSignature) {
		t.Errorf("short key: %v, want ErrBadSignature", err)
	}
	forged.Signature = &bundle.Signature{PublicKey: pub, Value: []byte{1}}
	if err := forged.Verify(trusted); !errors.Is(err, bundle.ErrBadSignature) {
		t.Errorf("short signature: %v, want ErrBadSignature", err)
	}
}

func TestEditDropsSignature(t *testing.T) {
	_, priv := testKey(1)
	for name, edit := range map[string]func(*bundle.Bundle){
		"AddObject":  func(b *bundle.Bundle) { b.AddObject("riscv64-linux-gnu", []byte("o")) },
		"SetBitcode": func(b *bundle.Bundle) { b.SetBitcode([]byte("bc")) },
	} {
		b := testBundle(t)
		if err := b.Sign(priv); err != nil {
			t.Fatal(err)
		}
		edit(b)
		if err := b.Verify(nil); !errors.Is(err, bundle.ErrUnsigned) {
			t.Errorf("%s: %v, want ErrUnsigned", name, err)
		}
	}
}

func TestSignBadKey(t *testing.T) {
	if err := testBundle(t).Sign(make([]byte, 10)); !errors.Is(err, bundle.ErrBadKey) {
		t.Fatalf("Sign: %v, want ErrBadKey", err)
	}
}
