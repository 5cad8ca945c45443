package vmtest

import (
	"bytes"
	"strconv"
	"testing"
)

// TestCPIO parses the newc archive back: 110-byte headers, 4-byte alignment
// of names and data, and the trailer.
func TestCPIO(t *testing.T) {
	var buf bytes.Buffer
	c := newCPIO(&buf)
	c.File("a/b/c.txt", 0o644, []byte("hello"))
	c.Symlink("bin/sh", "busybox")
	c.CharDev("dev/console", 0o600, 5, 1)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if len(b)%4 != 0 {
		t.Fatalf("archive length %d not 4-aligned", len(b))
	}
	var names []string
	for off := 0; off < len(b); {
		h := b[off : off+110]
		if string(h[:6]) != "070701" {
			t.Fatalf("bad magic at %d", off)
		}
		field := func(i int) int {
			v, err := strconv.ParseUint(string(h[6+8*i:14+8*i]), 16, 32)
			if err != nil {
				t.Fatal(err)
			}
			return int(v)
		}
		size, nameLen := field(6), field(11)
		name := string(b[off+110 : off+110+nameLen-1])
		names = append(names, name)
		off += (110 + nameLen + 3) &^ 3
		data := b[off : off+size]
		if name == "a/b/c.txt" && string(data) != "hello" {
			t.Fatalf("data %q", data)
		}
		if name == "dev/console" && (field(9) != 5 || field(10) != 1) {
			t.Fatal("console device numbers")
		}
		off += (size + 3) &^ 3
		if name == "TRAILER!!!" {
			break
		}
	}
	want := []string{"a", "a/b", "a/b/c.txt", "bin", "bin/sh", "dev", "dev/console", "TRAILER!!!"}
	if len(names) != len(want) {
		t.Fatalf("entries %v", names)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("entries %v, want %v", names, want)
		}
	}
}
