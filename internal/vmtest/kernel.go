package vmtest

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// RxeModules are the kernel modules soft-RoCE needs, in load order.
// crc32_generic comes first because rdma_rxe asks the crypto API for "crc32"
// at init (a soft dependency modinfo does not list); without it rxe fails with
// "failed to init crc32 algorithm".
var RxeModules = []string{
	"crc32_generic", "udp_tunnel", "ip6_udp_tunnel",
	"ib_core", "ib_uverbs", "rdma_rxe", "dummy", "veth",
}

// Kernel is a kernel image and the module files to load, in order, as cached
// on the host.
type Kernel struct {
	Package string   // Debian package, e.g. linux-image-6.1.0-56-amd64
	Image   string   // path of vmlinuz
	Modules []string // paths of the .ko files, in load order
}

// hostTools maps a command the harness runs to the Debian package that has it.
var hostTools = []struct{ cmd, pkg string }{
	{"qemu-system-x86_64", "qemu-system-x86"},
	{"dpkg", "dpkg"},
}

// EnsureHostTools installs qemu (and busybox-static, which the initramfs
// carries for debugging) with apt-get when they are missing.
func EnsureHostTools(ctx context.Context, log *slog.Logger) error {
	var missing []string
	for _, t := range hostTools {
		if _, err := exec.LookPath(t.cmd); err != nil {
			missing = append(missing, t.pkg)
		}
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		missing = append(missing, "busybox-static")
	}
	if len(missing) == 0 {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("vmtest: missing %s; install with: sudo apt-get install -y %s",
			strings.Join(missing, " "), strings.Join(missing, " "))
	}
	log.Info("installing host packages", "packages", missing)
	if err := aptGet(ctx, append([]string{"install", "-y", "-q", "--no-install-recommends"}, missing...)...); err != nil {
		// The package lists may be absent on a fresh machine.
		if err := aptGet(ctx, "update", "-q"); err != nil {
			return err
		}
		if err := aptGet(ctx, append([]string{"install", "-y", "-q", "--no-install-recommends"}, missing...)...); err != nil {
			return err
		}
	}
	for _, t := range hostTools {
		if _, err := exec.LookPath(t.cmd); err != nil {
			return fmt.Errorf("vmtest: %s still missing after installing %s", t.cmd, t.pkg)
		}
	}
	return nil
}

func aptGet(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "apt-get", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("vmtest: apt-get %s: %w\n%s", strings.Join(args, " "), err, tail(out, 2000))
	}
	return nil
}

// ResolveKernelPackage names the versioned kernel package the
// linux-image-amd64 metapackage depends on (the full flavor: -cloud lacks
// rdma_rxe).
func ResolveKernelPackage(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "apt-cache", "depends", "linux-image-amd64").Output()
	if err == nil {
		if p := parseDepends(out); p != "" {
			return p, nil
		}
	}
	if err := aptGet(ctx, "update", "-q"); err != nil {
		return "", err
	}
	out, err = exec.CommandContext(ctx, "apt-cache", "depends", "linux-image-amd64").Output()
	if err != nil {
		return "", fmt.Errorf("vmtest: apt-cache depends linux-image-amd64: %w", err)
	}
	if p := parseDepends(out); p != "" {
		return p, nil
	}
	return "", errors.New("vmtest: no linux-image-*-amd64 dependency of linux-image-amd64")
}

func parseDepends(out []byte) string {
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "Depends:" && strings.HasPrefix(f[1], "linux-image-") && strings.HasSuffix(f[1], "-amd64") {
			return f[1]
		}
	}
	return ""
}

// FetchKernel returns the kernel of pkg with the named modules, downloading
// and unpacking the package into cacheDir/pkg on first use. Only the image and
// the requested modules are kept (the unpacked package is ~400 MB).
func FetchKernel(ctx context.Context, log *slog.Logger, cacheDir, pkg string, modules []string) (*Kernel, error) {
	dir := filepath.Join(cacheDir, pkg)
	if k, err := cachedKernel(dir, pkg, modules); err == nil {
		return k, nil
	}
	log.Info("fetching kernel package", "package", pkg, "cache", dir)
	tmp, err := os.MkdirTemp(cacheDir, "dl-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	dl := exec.CommandContext(ctx, "apt-get", "download", pkg)
	dl.Dir = tmp
	if out, err := dl.CombinedOutput(); err != nil {
		if err := aptGet(ctx, "update", "-q"); err != nil {
			return nil, err
		}
		dl = exec.CommandContext(ctx, "apt-get", "download", pkg)
		dl.Dir = tmp
		if out2, err := dl.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("vmtest: apt-get download %s: %w\n%s\n%s", pkg, err, tail(out, 1000), tail(out2, 1000))
		}
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		return nil, fmt.Errorf("vmtest: apt-get download %s left %d .deb files", pkg, len(debs))
	}
	root := filepath.Join(tmp, "root")
	if out, err := exec.CommandContext(ctx, "dpkg", "-x", debs[0], root).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("vmtest: dpkg -x: %w\n%s", err, tail(out, 1000))
	}
	images, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if len(images) != 1 {
		return nil, fmt.Errorf("vmtest: %s has %d kernel images", pkg, len(images))
	}
	found := map[string]string{}
	err = filepath.WalkDir(filepath.Join(root, "lib", "modules"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		name := d.Name()
		if i := strings.Index(name, ".ko"); i > 0 {
			found[name[:i]] = p
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	stage := filepath.Join(tmp, "stage")
	if err := os.MkdirAll(filepath.Join(stage, "modules"), 0o755); err != nil {
		return nil, err
	}
	if err := copyFile(images[0], filepath.Join(stage, "vmlinuz")); err != nil {
		return nil, err
	}
	for _, m := range modules {
		p, ok := found[m]
		if !ok {
			// Built into this kernel, or misspelt: the guest will tell.
			log.Warn("module not in package (built in?)", "module", m)
			continue
		}
		if !strings.HasSuffix(p, ".ko") {
			return nil, fmt.Errorf("vmtest: %s is compressed; only plain .ko modules are supported", p)
		}
		if err := copyFile(p, filepath.Join(stage, "modules", m+".ko")); err != nil {
			return nil, err
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.Rename(stage, dir); err != nil {
		return nil, err
	}
	return cachedKernel(dir, pkg, modules)
}

func cachedKernel(dir, pkg string, modules []string) (*Kernel, error) {
	k := &Kernel{Package: pkg, Image: filepath.Join(dir, "vmlinuz")}
	if _, err := os.Stat(k.Image); err != nil {
		return nil, err
	}
	for _, m := range modules {
		p := filepath.Join(dir, "modules", m+".ko")
		if _, err := os.Stat(p); err == nil {
			k.Modules = append(k.Modules, p)
		}
	}
	if len(k.Modules) == 0 && len(modules) > 0 {
		return nil, errors.New("no modules cached")
	}
	return k, nil
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o644)
}

// checkStatic refuses dynamically linked binaries: the initramfs has no libc.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("vmtest: %s: %w", path, err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 {
		return fmt.Errorf("vmtest: %s is %v, the VM is x86_64", path, f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("vmtest: %s is dynamically linked; build it with CGO_ENABLED=0", path)
		}
	}
	return nil
}

func tail(b []byte, n int) []byte {
	b = bytes.TrimSpace(b)
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
