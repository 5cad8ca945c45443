package vmtest

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// File is a host file to put into the initramfs at Guest (an absolute
// guest path).
type File struct {
	Guest string
	Host  string
	Mode  uint32 // permission bits
}

// PerftestDir is where the perftest binaries sit in the guest.
const PerftestDir = "/usr/bin"

// PerftestTools are the perftest programs the VM gets.
var PerftestTools = []string{"ib_send_lat", "ib_write_lat", "ib_read_lat"}

// perftestPackages are downloaded (not installed) and unpacked into a cache
// sysroot. They are perftest and the packages whose shared objects it loads,
// libc included, so the guest's user space comes from one release whatever
// the host has installed. Shared libraries they need beyond these are taken
// from the host.
var perftestPackages = []string{
	"perftest", "ibverbs-providers", "libibverbs1", "librdmacm1", "libibumad3",
	"libpci3", "libnl-3-200", "libnl-route-3-200", "libudev1", "zlib1g", "libc6",
}

// libDirs are the directories the dynamic loader searches without an
// ld.so.cache (Debian's system search path), in its order.
var libDirs = []string{"lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib", "usr/lib", "lib64", "usr/lib64"}

// PerftestFiles returns the files that make perftest's latency tools run on
// rxe in the guest: the binaries, every shared library they need (closure of
// DT_NEEDED) at the path the loader finds it, the dynamic loader at the
// binaries' PT_INTERP path, the rxe provider that libibverbs dlopen()s from
// its provider directory, and /etc/libibverbs.d/rxe.driver, which tells
// libibverbs to try that provider. The packages are fetched with apt-get
// download into cacheDir/perftest on first use.
func PerftestFiles(ctx context.Context, log *slog.Logger, cacheDir string) ([]File, error) {
	root, err := perftestRoot(ctx, log, filepath.Join(cacheDir, "perftest"))
	if err != nil {
		return nil, err
	}
	var files []File
	seen := map[string]bool{}
	add := func(guest, host string, mode uint32) {
		if !seen[guest] {
			seen[guest] = true
			files = append(files, File{Guest: guest, Host: host, Mode: mode})
		}
	}
	var elves []string // guest paths whose DT_NEEDED still have to be resolved
	for _, t := range PerftestTools {
		g := path.Join(PerftestDir, t)
		add(g, filepath.Join(root, g), 0o755)
		elves = append(elves, g)
	}
	providers, _ := filepath.Glob(filepath.Join(root, "usr/lib/x86_64-linux-gnu/libibverbs/librxe-rdmav*.so"))
	if len(providers) != 1 {
		return nil, fmt.Errorf("vmtest: perftest sysroot %s: %d rxe providers (librxe-rdmav*.so)", root, len(providers))
	}
	pg := "/" + filepath.ToSlash(strings.TrimPrefix(providers[0], root+"/"))
	add(pg, providers[0], 0o644)
	elves = append(elves, pg)
	add("/etc/libibverbs.d/rxe.driver", filepath.Join(root, "etc/libibverbs.d/rxe.driver"), 0o644)

	interp, err := interpreter(filepath.Join(root, PerftestDir, PerftestTools[0]))
	if err != nil {
		return nil, err
	}
	host, err := resolveIn(root, interp)
	if err != nil {
		return nil, fmt.Errorf("vmtest: dynamic loader %s: %w", interp, err)
	}
	add(interp, host, 0o755)

	var missing []string
	for len(elves) > 0 {
		g := elves[0]
		elves = elves[1:]
		f, err := elf.Open(files[indexOf(files, g)].Host)
		if err != nil {
			return nil, fmt.Errorf("vmtest: %s: %w", g, err)
		}
		needed, err := f.ImportedLibraries()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("vmtest: %s: DT_NEEDED: %w", g, err)
		}
		for _, so := range needed {
			guest, host, ok := findLib(root, so)
			if !ok {
				missing = append(missing, so+" (needed by "+g+")")
				continue
			}
			if !seen[guest] {
				add(guest, host, 0o755)
				elves = append(elves, guest)
			}
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("vmtest: perftest needs shared libraries found neither in %s nor on the host: %s", root, strings.Join(missing, ", "))
	}
	sort.Slice(files, func(a, b int) bool { return files[a].Guest < files[b].Guest })
	return files, nil
}

func indexOf(files []File, guest string) int {
	for i := range files {
		if files[i].Guest == guest {
			return i
		}
	}
	panic("vmtest: BUG: " + guest + " not added")
}

// perftestRoot unpacks perftestPackages into dir/root once.
func perftestRoot(ctx context.Context, log *slog.Logger, dir string) (string, error) {
	root := filepath.Join(dir, "root")
	stamp := filepath.Join(dir, "packages")
	want := strings.Join(perftestPackages, " ") + "\n"
	if b, err := os.ReadFile(stamp); err == nil && string(b) == want {
		return root, nil
	}
	log.Info("fetching perftest packages", "packages", perftestPackages, "cache", dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(dir, "dl-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	download := func() ([]byte, error) {
		cmd := exec.CommandContext(ctx, "apt-get", append([]string{"download"}, perftestPackages...)...)
		cmd.Dir = tmp
		return cmd.CombinedOutput()
	}
	if out, err := download(); err != nil {
		// The package lists may be absent on a fresh machine.
		if err := aptGet(ctx, "update", "-q"); err != nil {
			return "", err
		}
		if out2, err := download(); err != nil {
			return "", fmt.Errorf("vmtest: apt-get download %s: %w\n%s\n%s", strings.Join(perftestPackages, " "), err, tail(out, 1000), tail(out2, 1000))
		}
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != len(perftestPackages) {
		return "", fmt.Errorf("vmtest: apt-get download left %d .deb files for %d packages", len(debs), len(perftestPackages))
	}
	stage := filepath.Join(tmp, "root")
	for _, d := range debs {
		if out, err := exec.CommandContext(ctx, "dpkg", "-x", d, stage).CombinedOutput(); err != nil {
			return "", fmt.Errorf("vmtest: dpkg -x %s: %w\n%s", filepath.Base(d), err, tail(out, 1000))
		}
	}
	if err := os.RemoveAll(root); err != nil {
		return "", err
	}
	if err := os.Rename(stage, root); err != nil {
		return "", err
	}
	return root, os.WriteFile(stamp, []byte(want), 0o644)
}

// interpreter is the PT_INTERP of an ELF executable.
func interpreter(bin string) (string, error) {
	f, err := elf.Open(bin)
	if err != nil {
		return "", fmt.Errorf("vmtest: %w", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				return "", fmt.Errorf("vmtest: %s: PT_INTERP: %w", bin, err)
			}
			return strings.TrimRight(string(b), "\x00"), nil
		}
	}
	return "", fmt.Errorf("vmtest: %s has no PT_INTERP", bin)
}

// findLib looks for soname in the loader's search path, first in the
// sysroot, then on the host. It returns the guest path (same as the path
// searched) and the host file holding its contents.
func findLib(root, so string) (guest, host string, ok bool) {
	for _, base := range []string{root, "/"} {
		for _, d := range libDirs {
			g := "/" + d + "/" + so
			h, err := resolveIn(base, g)
			if err != nil {
				continue
			}
			if st, err := os.Stat(h); err == nil && st.Mode().IsRegular() {
				return g, h, true
			}
		}
	}
	return "", "", false
}

// resolveIn follows symlinks of the absolute path p inside root, taking
// absolute link targets relative to root (filepath.EvalSymlinks would leave
// the sysroot for the host's files).
func resolveIn(root, p string) (string, error) {
	for hops := 0; hops < 16; hops++ {
		// Resolve the directories first: Debian's /lib may itself be a link
		// to usr/lib.
		dir, err := resolveDir(root, path.Dir(p), hops)
		if err != nil {
			return "", err
		}
		p = path.Join(dir, path.Base(p))
		h := filepath.Join(root, p)
		st, err := os.Lstat(h)
		if err != nil {
			return "", err
		}
		if st.Mode()&os.ModeSymlink == 0 {
			return h, nil
		}
		t, err := os.Readlink(h)
		if err != nil {
			return "", err
		}
		if !path.IsAbs(t) {
			t = path.Join(path.Dir(p), t)
		}
		p = t
	}
	return "", fmt.Errorf("%s: too many levels of symbolic links in %s", p, root)
}

func resolveDir(root, dir string, hops int) (string, error) {
	if dir == "/" || dir == "." {
		return "/", nil
	}
	if hops > 16 {
		return "", errors.New("too many levels of symbolic links")
	}
	parent, err := resolveDir(root, path.Dir(dir), hops+1)
	if err != nil {
		return "", err
	}
	d := path.Join(parent, path.Base(dir))
	st, err := os.Lstat(filepath.Join(root, d))
	if err != nil || st.Mode()&os.ModeSymlink == 0 {
		return d, nil // a missing directory fails at the file's Lstat
	}
	t, err := os.Readlink(filepath.Join(root, d))
	if err != nil {
		return "", err
	}
	if !path.IsAbs(t) {
		t = path.Join(parent, t)
	}
	return resolveDir(root, t, hops+1)
}
