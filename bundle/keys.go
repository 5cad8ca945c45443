package bundle

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Key file suffixes used by WriteKeyFiles and LoadTrustDir.
const (
	PrivateKeySuffix = ".key"
	PublicKeySuffix  = ".pub"
)

// GenerateKey returns a new ed25519 key pair from crypto/rand.
func GenerateKey() (ed25519.PublicKey, ed25519.PrivateKey, error) {
	return ed25519.GenerateKey(nil)
}

// WriteKeyFiles writes priv to dir/name.key (mode 0600) and its public key
// to dir/name.pub (mode 0644). It never overwrites an existing file, so a
// key cannot be lost by accident.
func WriteKeyFiles(dir, name string, priv ed25519.PrivateKey) error {
	if name == "" || strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return fmt.Errorf("bundle: bad key name %q", name)
	}
	if len(priv) != ed25519.PrivateKeySize {
		return fmt.Errorf("%w: private key has %d bytes", ErrBadKey, len(priv))
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	base := filepath.Join(dir, name)
	// Check both first so that a clash leaves no half-written pair.
	for _, p := range []string{base + PrivateKeySuffix, base + PublicKeySuffix} {
		if _, err := os.Lstat(p); err == nil {
			return &fs.PathError{Op: "create", Path: p, Err: fs.ErrExist}
		}
	}
	if err := writeNew(base+PrivateKeySuffix, 0o600, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		return err
	}
	return writeNew(base+PublicKeySuffix, 0o644, &pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
}

func writeNew(path string, mode os.FileMode, b *pem.Block) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if err := pem.Encode(f, b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// LoadPrivateKey reads a PKCS#8 PEM ed25519 private key.
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	der, err := readPEM(path, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadKey, path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: %s: %T is not ed25519", ErrBadKey, path, k)
	}
	return priv, nil
}

// LoadPublicKey reads a PKIX PEM ed25519 public key.
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	der, err := readPEM(path, "PUBLIC KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadKey, path, err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: %s: %T is not ed25519", ErrBadKey, path, k)
	}
	return pub, nil
}

// LoadTrustDir returns the public keys of every *.pub file in dir, in name
// order. One unreadable key fails the whole load: a trust list that is
// silently shorter than intended is worse than none.
func LoadTrustDir(dir string) ([]ed25519.PublicKey, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var keys []ed25519.PublicKey
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), PublicKeySuffix) {
			continue
		}
		k, err := LoadPublicKey(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// readPEM returns the DER bytes of the only PEM block in path, which must
// have type typ.
func readPEM(path, typ string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b, rest := pem.Decode(data)
	switch {
	case b == nil:
		return nil, fmt.Errorf("%w: %s: no PEM block", ErrBadKey, path)
	case b.Type != typ:
		return nil, fmt.Errorf("%w: %s: PEM type %q, want %q", ErrBadKey, path, b.Type, typ)
	case len(bytes.TrimSpace(rest)) != 0:
		return nil, fmt.Errorf("%w: %s: data after the PEM block", ErrBadKey, path)
	}
	return b.Bytes, nil
}
