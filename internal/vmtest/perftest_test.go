package vmtest

import (
	"os"
	"path/filepath"
	"testing"
)

// TestResolveIn checks that absolute symlinks resolve inside the sysroot,
// as Debian's /lib64/ld-linux-x86-64.so.2 -> /lib/x86_64-linux-gnu/… does,
// including through a linked directory (merged /usr).
func TestResolveIn(t *testing.T) {
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "usr/lib/x86_64-linux-gnu"), 0o755))
	must(os.MkdirAll(filepath.Join(root, "lib64"), 0o755))
	must(os.Symlink("usr/lib", filepath.Join(root, "lib")))
	must(os.WriteFile(filepath.Join(root, "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"), []byte("ld"), 0o755))
	must(os.Symlink("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", filepath.Join(root, "lib64/ld-linux-x86-64.so.2")))
	must(os.WriteFile(filepath.Join(root, "usr/lib/x86_64-linux-gnu/libfoo.so.1.2.3"), []byte("foo"), 0o644))
	must(os.Symlink("libfoo.so.1.2.3", filepath.Join(root, "usr/lib/x86_64-linux-gnu/libfoo.so.1")))

	h, err := resolveIn(root, "/lib64/ld-linux-x86-64.so.2")
	if err != nil || h != filepath.Join(root, "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2") {
		t.Fatalf("ld.so: %q %v", h, err)
	}
	g, h, ok := findLib(root, "libfoo.so.1")
	if !ok || g != "/lib/x86_64-linux-gnu/libfoo.so.1" || h != filepath.Join(root, "usr/lib/x86_64-linux-gnu/libfoo.so.1.2.3") {
		t.Fatalf("libfoo: %q %q %v", g, h, ok)
	}
	if _, _, ok := findLib(root, "libdoesnotexist.so.9"); ok {
		t.Fatal("found a library that does not exist")
	}
	must(os.Symlink("loop", filepath.Join(root, "loop")))
	if _, err := resolveIn(root, "/loop"); err == nil {
		t.Fatal("resolved a symlink loop")
	}
}
