package bundle

import (
	"cmp"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// FormatVersion is the only format version this package reads and writes.
const FormatVersion = 1

// Format limits; see the package documentation.
const (
	maxManifest = 1 << 20
	maxEntries  = 4096
	maxObjects  = 64
	maxName     = 128
	maxEntry    = 256
	maxTriple   = 128
	maxLLVM     = 1000
)

// Digest is a sha256 hash. It encodes as 64 lowercase hex digits.
type Digest [32]byte

func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// MarshalText encodes d as lowercase hex.
func (d Digest) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText decodes 64 hex digits.
func (d *Digest) UnmarshalText(b []byte) error {
	if len(b) != 2*len(d) {
		return errors.New("sha256 must be 64 hex digits")
	}
	_, err := hex.Decode(d[:], b)
	return err
}

// Object describes the compiled object for one target triple.
type Object struct {
	Triple string `json:"triple"`
	SHA256 Digest `json:"sha256"`
	Size   int64  `json:"size"`
}

// Blob describes content addressed by its sha256, such as the bitcode.
type Blob struct {
	SHA256 Digest `json:"sha256"`
	Size   int64  `json:"size"`
}

// Signature is an ed25519 signature over the canonical manifest bytes.
type Signature struct {
	PublicKey ed25519.PublicKey
	Value     []byte
}

// Manifest describes a bundle. Objects are kept sorted by triple.
type Manifest struct {
	Format      int    // FormatVersion
	Name        string // kernel name
	Entries     []string
	Objects     []Object
	Bitcode     *Blob // nil without bitcode
	LLVMVersion int   // producer's LLVM major version, 0 if unknown
	Created     time.Time
	Signature   *Signature // nil when unsigned
}

// manifestJSON is the wire form; its field order is the canonical order.
type manifestJSON struct {
	Format    int            `json:"format"`
	Name      string         `json:"name"`
	Entries   []string       `json:"entries"`
	Objects   []Object       `json:"objects"`
	Bitcode   *Blob          `json:"bitcode,omitempty"`
	LLVM      int            `json:"llvm"`
	Created   int64          `json:"created"`
	Signature *signatureJSON `json:"signature,omitempty"`
}

type signatureJSON struct {
	Key string `json:"key"`
	Sig string `json:"sig"`
}

// encode returns the canonical encoding of m, with or without its
// signature. Sorting here, not only at insertion, keeps callers that edit
// the exported fields from leaking their order into the hash.
func (m *Manifest) encode(withSignature bool) []byte {
	w := manifestJSON{
		Format:  m.Format,
		Name:    m.Name,
		Entries: append([]string{}, m.Entries...),
		Objects: append([]Object{}, m.Objects...),
		Bitcode: m.Bitcode,
		LLVM:    m.LLVMVersion,
		Created: m.Created.Unix(),
	}
	slices.Sort(w.Entries)
	slices.SortStableFunc(w.Objects, func(a, b Object) int { return cmp.Compare(a.Triple, b.Triple) })
	if withSignature && m.Signature != nil {
		w.Signature = &signatureJSON{
			Key: hex.EncodeToString(m.Signature.PublicKey),
			Sig: hex.EncodeToString(m.Signature.Value),
		}
	}
	b, err := json.Marshal(&w)
	if err != nil {
		panic("BUG: bundle: manifest encoding failed: " + err.Error())
	}
	return b
}

// decodeManifest parses and validates a manifest and insists that raw is
// its canonical encoding.
func decodeManifest(raw []byte) (*Manifest, error) {
	var w manifestJSON
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, formatErr("manifest", ErrCorrupt, "%v", err)
	}
	m := &Manifest{
		Format:      w.Format,
		Name:        w.Name,
		Entries:     w.Entries,
		Objects:     w.Objects,
		Bitcode:     w.Bitcode,
		LLVMVersion: w.LLVM,
		Created:     time.Unix(w.Created, 0).UTC(),
	}
	if s := w.Signature; s != nil {
		key, err1 := hex.DecodeString(s.Key)
		sig, err2 := hex.DecodeString(s.Sig)
		if err := errors.Join(err1, err2); err != nil {
			return nil, formatErr("signature", ErrCorrupt, "%v", err)
		}
		m.Signature = &Signature{PublicKey: key, Value: sig}
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	if string(m.encode(true)) != string(raw) {
		return nil, formatErr("manifest", ErrCorrupt, "not in canonical form")
	}
	return m, nil
}

// validate checks the rules of the format that do not involve blobs.
func (m *Manifest) validate() error {
	if m.Format != FormatVersion {
		return formatErr("format", ErrVersion, "%d", m.Format)
	}
	if err := checkString(m.Name, maxName, nameChar); err != nil {
		return formatErr("name", ErrInvalid, "%v", err)
	}
	if len(m.Entries) > maxEntries {
		return formatErr("entries", ErrTooLarge, "%d entries, limit %d", len(m.Entries), maxEntries)
	}
	seen := make(map[string]bool, len(m.Entries))
	for i, e := range m.Entries {
		field := fmt.Sprintf("entries[%d]", i)
		if err := checkString(e, maxEntry, entryChar); err != nil {
			return formatErr(field, ErrInvalid, "%v", err)
		}
		if seen[e] {
			return formatErr(field, ErrInvalid, "duplicate entry %q", e)
		}
		seen[e] = true
	}
	if len(m.Objects) > maxObjects {
		return formatErr("objects", ErrTooLarge, "%d objects, limit %d", len(m.Objects), maxObjects)
	}
	clear(seen)
	for i, o := range m.Objects {
		field := fmt.Sprintf("objects[%d]", i)
		if err := checkString(o.Triple, maxTriple, tripleChar); err != nil {
			return formatErr(field+".triple", ErrInvalid, "%v", err)
		}
		if seen[o.Triple] {
			return formatErr(field+".triple", ErrInvalid, "duplicate triple %q", o.Triple)
		}
		seen[o.Triple] = true
		if o.Size < 1 {
			return formatErr(field+".size", ErrInvalid, "%d", o.Size)
		}
	}
	if m.Bitcode != nil && m.Bitcode.Size < 1 {
		return formatErr("bitcode.size", ErrInvalid, "%d", m.Bitcode.Size)
	}
	if len(m.Objects) == 0 && m.Bitcode == nil {
		return formatErr("objects", ErrInvalid, "no objects and no bitcode")
	}
	if m.LLVMVersion < 0 || m.LLVMVersion > maxLLVM {
		return formatErr("llvm", ErrInvalid, "%d", m.LLVMVersion)
	}
	// A node compiles bitcode only with an llc at least this new.
	if m.Bitcode != nil && m.LLVMVersion == 0 {
		return formatErr("llvm", ErrInvalid, "bitcode needs the producer's LLVM version")
	}
	if s := m.Signature; s != nil {
		if len(s.PublicKey) != ed25519.PublicKeySize {
			return formatErr("signature.key", ErrInvalid, "%d bytes", len(s.PublicKey))
		}
		if len(s.Value) != ed25519.SignatureSize {
			return formatErr("signature.sig", ErrInvalid, "%d bytes", len(s.Value))
		}
	}
	return nil
}

func nameChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '_' || c == '+' || c == '-'
}

func entryChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '_' || c == '.' || c == '$'
}

func tripleChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '_' || c == '-'
}

// checkString keeps names to charsets that JSON encodes verbatim, so the
// canonical form needs no escaping rules.
func checkString(s string, maxLen int, ok func(byte) bool) error {
	if s == "" {
		return errors.New("empty")
	}
	if len(s) > maxLen {
		return fmt.Errorf("%d bytes, limit %d", len(s), maxLen)
	}
	for i := range len(s) {
		if !ok(s[i]) {
			return fmt.Errorf("%q: byte %#x not allowed", s, s[i])
		}
	}
	return nil
}
