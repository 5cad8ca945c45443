package bundle

import (
	"bytes"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
)

// zeros is an endless stream of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestLimitReader(t *testing.T) {
	n, err := io.Copy(io.Discard, &limitReader{r: zeros{}, left: 1000})
	if !errors.Is(err, errLimit) || n > 1000 {
		t.Fatalf("endless stream: %d bytes, %v; want errLimit", n, err)
	}
	n, err = io.Copy(io.Discard, &limitReader{r: strings.NewReader(strings.Repeat("x", 1000)), left: 1000})
	if err != nil || n != 1000 {
		t.Fatalf("stream at the limit: %d bytes, %v", n, err)
	}
	// The stream limit holds even if the manifest's sizes were let through.
	b := Wrap([]byte("object"), "x86_64-linux-gnu")
	p := appendPayload(nil, b.encode(true), &b.Manifest, b.blobs)
	_, err = parsePayload(&limitReader{r: bytes.NewReader(p), left: int64(len(p) - 1)}, 1<<20)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("parsePayload: %v, want ErrTooLarge", err)
	}

	// Sizes near the int64 limit must not overflow the announced total.
	m := Manifest{Format: FormatVersion, Name: "k"}
	for _, triple := range []string{"a", "b", "c"} {
		m.Objects = append(m.Objects, Object{Triple: triple, SHA256: Digest{triple[0]}, Size: math.MaxInt64})
	}
	p = appendPayload(nil, m.encode(true), &Manifest{}, nil)
	_, err = parsePayload(&limitReader{r: bytes.NewReader(p), left: math.MaxInt64}, math.MaxInt64)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("huge sizes: %v, want ErrTooLarge", err)
	}
}
