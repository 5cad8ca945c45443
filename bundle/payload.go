package bundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"slices"
)

// appendPayload appends the decompressed payload: the encoded manifest
// raw, then the blobs m references, sorted by digest.
func appendPayload(dst, raw []byte, m *Manifest, blobs map[Digest][]byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(raw)))
	dst = append(dst, raw...)
	refs := slices.SortedFunc(maps.Keys(references(m)), compareDigest)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(refs)))
	for _, d := range refs {
		dst = append(dst, d[:]...)
		dst = binary.LittleEndian.AppendUint64(dst, uint64(len(blobs[d])))
		dst = append(dst, blobs[d]...)
	}
	return dst
}

// parsePayload decodes a payload as it is decompressed. It rejects a
// manifest whose blobs add up to more than limit before reading them,
// checks each blob header against the manifest before reading its content,
// and grows buffers only as content arrives, so a file cannot make it
// allocate more than it actually decompresses.
func parsePayload(r io.Reader, limit int64) (*Bundle, error) {
	var word [8]byte
	if _, err := io.ReadFull(r, word[:4]); err != nil {
		return nil, readErr("manifest", err)
	}
	n := binary.LittleEndian.Uint32(word[:])
	if n > maxManifest {
		return nil, formatErr("manifest", ErrTooLarge, "%d bytes, limit %d", n, maxManifest)
	}
	raw, err := readN(r, uint64(n))
	if err != nil {
		return nil, readErr("manifest", err)
	}
	m, err := decodeManifest(raw)
	if err != nil {
		return nil, err
	}
	refs := references(m)
	total := uint64(4+n+4) + uint64(len(refs))*(32+8)
	for _, size := range refs {
		if total > uint64(limit) {
			break // before the sum could overflow
		}
		total += uint64(size)
	}
	if total > uint64(limit) {
		return nil, formatErr("manifest", ErrTooLarge, "payload of at least %d bytes, limit %d", total, limit)
	}

	if _, err := io.ReadFull(r, word[:4]); err != nil {
		return nil, readErr("blobs", err)
	}
	count := binary.LittleEndian.Uint32(word[:])
	if count > maxObjects+1 {
		return nil, formatErr("blobs", ErrTooLarge, "%d blobs, limit %d", count, maxObjects+1)
	}
	blobs := make(map[Digest][]byte, count)
	var prev Digest
	for i := range int(count) {
		field := fmt.Sprintf("blobs[%d]", i)
		var head [32 + 8]byte
		if _, err := io.ReadFull(r, head[:]); err != nil {
			return nil, readErr(field, err)
		}
		d, size := Digest(head[:32]), binary.LittleEndian.Uint64(head[32:])
		if i > 0 && compareDigest(prev, d) >= 0 {
			return nil, formatErr(field, ErrCorrupt, "not sorted by sha256 or duplicate")
		}
		want, ok := refs[d]
		if !ok {
			return nil, formatErr(field, ErrCorrupt, "sha256 %s not in the manifest", d)
		}
		if size != uint64(want) {
			return nil, formatErr(field, ErrCorrupt, "%d bytes, manifest says %d", size, want)
		}
		content, err := readN(r, size)
		if err != nil {
			return nil, readErr(field, err)
		}
		if sha256.Sum256(content) != d {
			return nil, formatErr(field, ErrHashMismatch, "content does not match sha256 %s", d)
		}
		blobs[d], prev = content, d
	}
	// Reading to the end also makes zstd check its frame checksum.
	switch _, err := io.ReadFull(r, word[:1]); err {
	case nil:
		return nil, formatErr("payload", ErrCorrupt, "data after the last blob")
	case io.EOF:
	default:
		return nil, readErr("payload", err)
	}
	if err := checkBlobs(m, blobs); err != nil {
		return nil, err
	}
	return &Bundle{Manifest: *m, blobs: blobs}, nil
}

// readN reads exactly n bytes, growing the buffer as data arrives rather
// than allocating n up front.
func readN(r io.Reader, n uint64) ([]byte, error) {
	const chunk = 1 << 20
	buf := make([]byte, 0, min(n, chunk))
	for uint64(len(buf)) < n {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, int(min(n-uint64(len(buf)), uint64(cap(buf)))))
		}
		k, err := io.ReadFull(r, buf[len(buf):min(uint64(cap(buf)), n)])
		buf = buf[:len(buf)+k]
		if err != nil {
			return nil, err
		}
	}
	return buf, nil
}

// checkBlobs checks that every blob the manifest references is present with
// the size the manifest gives.
func checkBlobs(m *Manifest, blobs map[Digest][]byte) error {
	check := func(field string, d Digest, size int64) error {
		c, ok := blobs[d]
		if !ok {
			return formatErr(field+".sha256", ErrCorrupt, "no blob %s", d)
		}
		if int64(len(c)) != size {
			return formatErr(field+".size", ErrCorrupt, "%d, blob has %d bytes", size, len(c))
		}
		return nil
	}
	for i, o := range m.Objects {
		if err := check(fmt.Sprintf("objects[%d]", i), o.SHA256, o.Size); err != nil {
			return err
		}
	}
	if bc := m.Bitcode; bc != nil {
		return check("bitcode", bc.SHA256, bc.Size)
	}
	return nil
}

// references returns the blobs the manifest references and their sizes.
func references(m *Manifest) map[Digest]int64 {
	refs := make(map[Digest]int64, len(m.Objects)+1)
	for _, o := range m.Objects {
		refs[o.SHA256] = o.Size
	}
	if m.Bitcode != nil {
		refs[m.Bitcode.SHA256] = m.Bitcode.Size
	}
	return refs
}

func compareDigest(a, b Digest) int { return bytes.Compare(a[:], b[:]) }
