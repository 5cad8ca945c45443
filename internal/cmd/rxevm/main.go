// Command rxevm is a `go test -exec` wrapper that runs a test binary inside a
// qemu VM with soft-RoCE: a Debian kernel, the rxe modules, a dummy netdev d0
// (10.9.0.1/24) and the rxe device rxe0 on it.
//
//	go test -exec "go run $PWD/internal/cmd/rxevm --" ./verbs/
//	go run ./internal/cmd/rxevm -- ./verbs.test -test.v
//
// It copies itself into the initramfs as /init (so it must be built with
// CGO_ENABLED=0), and the test binary sees BCSHIP_RXE=rxe0 and
// BCSHIP_RXE_NETDEV=d0. With --with-perftest the guest also has perftest's
// latency tools (ib_send_lat, ib_write_lat, ib_read_lat) in
// BCSHIP_PERFTEST, with their shared libraries and the rxe provider, for
// benchmarks that compare against them in the same boot. The exit status is the test binary's; 125 means the
// VM could not be set up, 1 with a message that it did not report a status.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/bcship/bcship/internal/vmtest"
)

func main() {
	if vmtest.IsGuest() {
		vmtest.GuestMain(guestSetup)
	}
	os.Exit(host())
}

func host() int {
	fs := flag.NewFlagSet("rxevm", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 10*time.Minute, "kill the VM after this long")
	kpkg := fs.String("kernel", os.Getenv("BCSHIP_VM_KERNEL"), "Debian kernel package (default: linux-image-amd64's dependency)")
	cache := fs.String("cache", os.Getenv("BCSHIP_VM_CACHE"), "kernel cache directory (default $XDG_CACHE_HOME/bcship/vm)")
	perftest := fs.Bool("with-perftest", os.Getenv("BCSHIP_VM_PERFTEST") != "", "add perftest's ib_{send,write,read}_lat and their libraries (the guest sees BCSHIP_PERFTEST=dir)")
	verbose := fs.Bool("v", os.Getenv("BCSHIP_VM_VERBOSE") != "", "log harness steps and timings to stderr")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: rxevm [flags] [--] test-binary [args...]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	if fs.NArg() < 1 {
		fs.Usage()
		return 2
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	self, err := os.Executable()
	if err != nil {
		log.Error("rxevm: own path", "err", err)
		return 1
	}
	bin, err := filepath.Abs(fs.Arg(0))
	if err != nil {
		log.Error("rxevm", "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := vmtest.Config{
		CacheDir:      *cache,
		KernelPackage: *kpkg,
		Init:          self,
		Setup:         "rxe",
		Env:           []string{"BCSHIP_RXE=" + rxeName, "BCSHIP_RXE_NETDEV=" + netdevName},
		Timeout:       *timeout,
		Log:           log,
	}
	for _, k := range []string{"BCSHIP_BENCH", "BCSHIP_LAT_ROUNDS", "BCSHIP_CPUPROFILE", "GOTRACEBACK", "GODEBUG"} {
		if v, ok := os.LookupEnv(k); ok {
			cfg.Env = append(cfg.Env, k+"="+v)
		}
	}
	if *perftest {
		cacheDir := cfg.CacheDir
		if cacheDir == "" {
			if cacheDir, err = vmtest.DefaultCacheDir(); err != nil {
				log.Error("rxevm", "err", err)
				return 1
			}
		}
		files, err := vmtest.PerftestFiles(ctx, log, cacheDir)
		if err != nil {
			fmt.Fprintln(os.Stderr, "rxevm:", err)
			return 1
		}
		cfg.Files = append(cfg.Files, files...)
		cfg.Env = append(cfg.Env, "BCSHIP_PERFTEST="+vmtest.PerftestDir)
	}
	res, err := vmtest.Run(ctx, cfg, bin, fs.Args()[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "rxevm:", err)
		if errors.Is(err, vmtest.ErrNoStatus) {
			return 1
		}
		return 1
	}
	log.Info("vm done", "kernel", res.Package, "status", res.Status, "boot", res.Boot.Round(time.Millisecond), "total", res.Total.Round(time.Millisecond))
	return res.Status
}
