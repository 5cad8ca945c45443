package bundle_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/bcship/bcship/bundle"
)

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	pub, priv, err := bundle.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := bundle.WriteKeyFiles(dir, "lead", priv); err != nil {
		t.Fatal(err)
	}
	if err := bundle.WriteKeyFiles(dir, "lead", priv); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second write: %v, want fs.ErrExist", err)
	}
	st, err := os.Stat(filepath.Join(dir, "lead.key"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		t.Errorf("private key mode %v", st.Mode())
	}

	got, err := bundle.LoadPrivateKey(filepath.Join(dir, "lead.key"))
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(priv) {
		t.Fatal("private key changed on disk")
	}

	// A trust dir with this key, another one and an unrelated file.
	otherPub, _ := testKey(2)
	der, _ := x509.MarshalPKIXPublicKey(otherPub)
	writeFile(t, filepath.Join(dir, "other.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	writeFile(t, filepath.Join(dir, "README"), []byte("not a key"))
	keys, err := bundle.LoadTrustDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || !keys[0].Equal(pub) || !keys[1].Equal(otherPub) {
		t.Fatalf("trust dir keys %x", keys)
	}

	b := testBundle(t)
	if err := b.Sign(got); err != nil {
		t.Fatal(err)
	}
	if err := b.Verify(keys); err != nil {
		t.Fatal(err)
	}
}

func TestKeyFileErrors(t *testing.T) {
	dir := t.TempDir()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	ecPriv, _ := x509.MarshalPKCS8PrivateKey(ec)
	for name, content := range map[string][]byte{
		"garbage.pub":   []byte("garbage"),
		"wrongtype.pub": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecPriv}),
		"ecdsa.pub":     pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecDER}),
		"ecdsa.key":     pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecPriv}),
		"trailing.pub":  append(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecDER}), "x"...),
	} {
		path := filepath.Join(dir, name)
		writeFile(t, path, content)
		load := func() error { _, err := bundle.LoadPublicKey(path); return err }
		if filepath.Ext(name) == ".key" {
			load = func() error { _, err := bundle.LoadPrivateKey(path); return err }
		}
		if err := load(); !errors.Is(err, bundle.ErrBadKey) {
			t.Errorf("%s: %v, want ErrBadKey", name, err)
		}
	}
	if _, err := bundle.LoadTrustDir(dir); !errors.Is(err, bundle.ErrBadKey) {
		t.Errorf("LoadTrustDir: %v, want ErrBadKey", err)
	}
	if _, err := bundle.LoadPrivateKey(filepath.Join(dir, "missing.key")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing key: %v, want fs.ErrNotExist", err)
	}
	_, priv := testKey(1)
	for _, name := range []string{"", ".", "..", "a/b"} {
		if err := bundle.WriteKeyFiles(dir, name, priv); err == nil {
			t.Errorf("WriteKeyFiles(%q) succeeded", name)
		}
	}
}

func writeFile(t *testing.T, path string, content []byte) {
	t.Helper()
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
}
