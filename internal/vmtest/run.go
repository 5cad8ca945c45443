package vmtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Sentinel starts the console line on which the guest reports the test
// binary's exit status: "@@VMTEST-EXIT@@ <status>".
const Sentinel = "@@VMTEST-EXIT@@"

// Guest paths inside the initramfs.
const (
	guestConfig  = "/vmtest.json"
	guestModules = "/lib/modules/vmtest"
	guestBinDir  = "/test"
)

// GuestConfig is what the host tells the guest's /init, as /vmtest.json.
type GuestConfig struct {
	Modules []string `json:"modules"` // guest paths, in load order
	Argv    []string `json:"argv"`    // test binary (guest path) and its arguments
	Env     []string `json:"env"`
	Setup   string   `json:"setup"` // name of the network set-up the init program runs
}

// Config describes one VM run.
type Config struct {
	CacheDir      string        // kernel cache; default $XDG_CACHE_HOME/bcship/vm
	KernelPackage string        // default: what linux-image-amd64 depends on
	Modules       []string      // module names in load order; default RxeModules
	Init          string        // static binary to run as /init (host path)
	Setup         string        // passed to the init program
	Env           []string      // extra guest environment
	Files         []File        // extra files for the initramfs (e.g. PerftestFiles)
	Memory        int           // MiB, default 2048
	CPUs          int           // default 2
	Timeout       time.Duration // whole boot; default 10 minutes
	Stdout        io.Writer     // console (test output), default os.Stdout
	Log           *slog.Logger
}

// Result is how a VM run ended.
type Result struct {
	Status   int           // the test binary's exit status
	Boot     time.Duration // qemu start to the first console line from /init
	Total    time.Duration // whole run including kernel fetch and initramfs build
	Package  string
	Initramf string
}

// ErrNoStatus means the VM stopped (crash, panic, timeout) before the guest
// reported the test's exit status.
var ErrNoStatus = errors.New("vmtest: VM ended without reporting an exit status")

// Run boots a VM that runs binary with args and returns its exit status.
// The console goes to cfg.Stdout as it arrives.
func Run(ctx context.Context, cfg Config, binary string, args []string) (*Result, error) {
	start := time.Now()
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	log := cfg.Log
	if err := checkStatic(binary); err != nil {
		return nil, err
	}
	if err := checkStatic(cfg.Init); err != nil {
		return nil, err
	}
	if err := EnsureHostTools(ctx, log); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.CacheDir, 0o755); err != nil {
		return nil, err
	}
	// One VM at a time per cache: the machine has few cores, and parallel
	// `go test -p N` runs would otherwise boot N TCG guests at once.
	lock, err := os.OpenFile(filepath.Join(cfg.CacheDir, "vm.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return nil, fmt.Errorf("vmtest: lock %s: %w", lock.Name(), err)
	}
	pkg := cfg.KernelPackage
	if pkg == "" {
		if pkg, err = ResolveKernelPackage(ctx); err != nil {
			return nil, err
		}
	}
	k, err := FetchKernel(ctx, log, cfg.CacheDir, pkg, cfg.Modules)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "vmtest-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	initrd := filepath.Join(tmp, "initrd.cpio")
	if err := buildInitramfs(initrd, cfg, k, binary, args); err != nil {
		return nil, err
	}
	res := &Result{Package: pkg, Initramf: initrd}
	st, boot, err := boot(ctx, cfg, k, initrd)
	res.Status, res.Boot, res.Total = st, boot, time.Since(start)
	return res, err
}

// DefaultCacheDir is where kernels and packages are cached when
// Config.CacheDir is empty: $XDG_CACHE_HOME/bcship/vm.
func DefaultCacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		// No $HOME or $XDG_CACHE_HOME (a bare CI environment): the kernel
		// package is then fetched again per machine boot, not per run.
		d = os.TempDir()
	}
	return filepath.Join(d, "bcship", "vm"), nil
}

func (cfg *Config) defaults() error {
	if cfg.CacheDir == "" {
		d, err := DefaultCacheDir()
		if err != nil {
			return err
		}
		cfg.CacheDir = d
	}
	if cfg.Modules == nil {
		cfg.Modules = RxeModules
	}
	if cfg.Memory == 0 {
		cfg.Memory = 2048
	}
	if cfg.CPUs == 0 {
		cfg.CPUs = 2
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Minute
	}
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Init == "" {
		return errors.New("vmtest: Config.Init is required")
	}
	return nil
}

func buildInitramfs(dst string, cfg Config, k *Kernel, binary string, args []string) error {
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	c := newCPIO(bw)
	for _, d := range []string{"dev", "proc", "sys", "tmp", "root", "bin"} {
		c.Dir(d)
	}
	// The kernel opens /dev/console for /init's stdio before devtmpfs exists.
	c.CharDev("dev/console", 0o600, 5, 1)
	c.CopyFile("init", 0o755, cfg.Init)
	if checkStatic("/bin/busybox") == nil {
		c.CopyFile("bin/busybox", 0o755, "/bin/busybox")
		for _, a := range []string{"sh", "ls", "cat", "ip", "dmesg", "ps", "mount"} {
			c.Symlink("bin/"+a, "busybox")
		}
	}
	gc := GuestConfig{Setup: cfg.Setup, Env: cfg.Env}
	for i, m := range k.Modules {
		g := fmt.Sprintf("%s/%02d-%s", guestModules, i, filepath.Base(m))
		c.CopyFile(g, 0o644, m)
		gc.Modules = append(gc.Modules, "/"+clean(g))
	}
	for _, x := range cfg.Files {
		if !strings.HasPrefix(x.Guest, "/") {
			return fmt.Errorf("vmtest: guest path %q is not absolute", x.Guest)
		}
		c.CopyFile(x.Guest, x.Mode, x.Host)
	}
	gbin := guestBinDir + "/" + filepath.Base(binary)
	c.CopyFile(gbin, 0o755, binary)
	gc.Argv = append([]string{gbin}, args...)
	js, err := json.Marshal(gc)
	if err != nil {
		return err
	}
	c.File(guestConfig, 0o644, js)
	if err := c.Close(); err != nil {
		return fmt.Errorf("vmtest: initramfs: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// boot runs qemu and scans the console for the sentinel.
func boot(ctx context.Context, cfg Config, k *Kernel, initrd string) (status int, bootTime time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	args := []string{
		"-accel", "tcg", "-cpu", "max",
		"-m", strconv.Itoa(cfg.Memory), "-smp", strconv.Itoa(cfg.CPUs),
		"-nodefaults", "-no-user-config", "-nic", "none",
		"-display", "none", "-serial", "stdio", "-no-reboot",
		"-kernel", k.Image, "-initrd", initrd,
		"-append", "console=ttyS0 quiet loglevel=3 panic=-1 clocksource=tsc tsc=reliable",
	}
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return -1, 0, err
	}
	start := time.Now()
	cfg.Log.Debug("booting", "qemu", strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		return -1, 0, fmt.Errorf("vmtest: start qemu: %w", err)
	}
	status = -1
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if rest, ok := strings.CutPrefix(strings.TrimLeft(line, "\r"), Sentinel); ok {
			if n, err := strconv.Atoi(strings.TrimSpace(rest)); err == nil {
				status = n
			}
			continue
		}
		if rest, ok := strings.CutPrefix(line, initBanner); ok && bootTime == 0 {
			bootTime = time.Since(start)
			cfg.Log.Debug("guest up", "boot", bootTime, "init", rest)
			continue
		}
		if strings.HasSuffix(line, "reboot: Power down") {
			continue // the guest's own shutdown, not test output
		}
		fmt.Fprintln(cfg.Stdout, line)
	}
	werr := cmd.Wait()
	if ctx.Err() != nil && status < 0 {
		return -1, bootTime, fmt.Errorf("vmtest: VM timed out after %v: %w", cfg.Timeout, ErrNoStatus)
	}
	if status < 0 {
		return -1, bootTime, fmt.Errorf("%w (qemu: %v)\n%s", ErrNoStatus, werr, tail(stderr.Bytes(), 2000))
	}
	return status, bootTime, nil
}
