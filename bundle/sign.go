package bundle

import (
	"crypto/ed25519"
	"fmt"
)

// Sign signs the canonical manifest bytes with priv, replacing any previous
// signature. The code hash does not change. Editing the bundle afterwards
// through AddObject or SetBitcode drops the signature.
func (b *Bundle) Sign(priv ed25519.PrivateKey) error {
	if len(priv) != ed25519.PrivateKeySize {
		return fmt.Errorf("%w: private key has %d bytes, want %d", ErrBadKey, len(priv), ed25519.PrivateKeySize)
	}
	b.Signature = &Signature{
		PublicKey: priv.Public().(ed25519.PublicKey),
		Value:     ed25519.Sign(priv, b.encode(false)),
	}
	return nil
}

// Verify checks that the bundle is signed by one of the trusted keys. It
// relies on the blobs matching the manifest's hashes, which Read checks and
// AddObject and SetBitcode maintain.
func (b *Bundle) Verify(trusted []ed25519.PublicKey) error {
	s := b.Signature
	if s == nil {
		return ErrUnsigned
	}
	// Check the length first: ed25519.Verify panics on a short key.
	if len(s.PublicKey) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: public key has %d bytes", ErrBadSignature, len(s.PublicKey))
	}
	known := false
	for _, k := range trusted {
		known = known || s.PublicKey.Equal(k)
	}
	if !known {
		return fmt.Errorf("%w: %x", ErrUntrusted, []byte(s.PublicKey))
	}
	if !ed25519.Verify(s.PublicKey, b.encode(false), s.Value) {
		return fmt.Errorf("%w: signer %x", ErrBadSignature, []byte(s.PublicKey))
	}
	return nil
}
