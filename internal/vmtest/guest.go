package vmtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"

	"golang.org/x/sys/unix"
)

// initBanner is the first line /init prints; the host times the boot by it.
const initBanner = "@@VMTEST-INIT@@"

// IsGuest reports whether this process is the VM's init.
func IsGuest() bool { return os.Getpid() == 1 }

// GuestMain is the VM's /init: it mounts the pseudo file systems, loads the
// modules, runs setup (named by the host's Config.Setup), runs the test
// binary, reports its status on the console and powers off. It never
// returns.
func GuestMain(setup func(ctx context.Context, name string) error) {
	fmt.Println(initBanner, time.Now().Format(time.RFC3339Nano))
	status := guestRun(setup)
	fmt.Printf("\n%s %d\n", Sentinel, status)
	unix.Sync()
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	// Reboot only fails if we are not allowed to: exiting init panics the
	// kernel, and panic=-1 with -no-reboot stops qemu as well.
	os.Exit(status)
}

// statusSetup is the status reported when the VM could not be set up, so
// that a harness failure is never mistaken for a test result.
const statusSetup = 125

func guestRun(setup func(ctx context.Context, name string) error) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg, err := guestPrepare()
	if err == nil && setup != nil {
		err = setup(ctx, cfg.Setup)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmtest guest:", err)
		return statusSetup
	}
	cmd := exec.Command(cfg.Argv[0], cfg.Argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	cmd.Env = append([]string{"PATH=/bin", "HOME=/root", "TMPDIR=/tmp"}, cfg.Env...)
	cmd.Dir = "/tmp"
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if st := ee.ExitCode(); st >= 0 {
			return st
		}
		fmt.Fprintln(os.Stderr, "vmtest guest: test binary:", err)
		return 128 + 9
	default:
		fmt.Fprintln(os.Stderr, "vmtest guest: test binary:", err)
		return statusSetup
	}
}

func guestPrepare() (*GuestConfig, error) {
	for _, m := range []struct{ src, dst, typ string }{
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
		{"devtmpfs", "/dev", "devtmpfs"},
		{"tmpfs", "/tmp", "tmpfs"},
	} {
		if err := unix.Mount(m.src, m.dst, m.typ, 0, ""); err != nil {
			return nil, fmt.Errorf("mount %s: %w", m.dst, err)
		}
	}
	data, err := os.ReadFile(guestConfig)
	if err != nil {
		return nil, err
	}
	var cfg GuestConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", guestConfig, err)
	}
	if len(cfg.Argv) == 0 {
		return nil, errors.New("no test binary")
	}
	for _, m := range cfg.Modules {
		if err := loadModule(m); err != nil {
			return nil, err
		}
	}
	// MRs pin pages against RLIMIT_MEMLOCK (8 MiB by default); the tests
	// register more than that.
	inf := &unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}
	if err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, inf); err != nil {
		return nil, fmt.Errorf("setrlimit memlock: %w", err)
	}
	return &cfg, nil
}

func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("load module %s: %w", path, err)
	}
	return nil
}
