package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bcship/bcship/bundle"
)

// goTool returns the go command, skipping the test without one.
func goTool(t testing.TB) string {
	t.Helper()
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err != nil {
		if p, err = exec.LookPath("go"); err != nil {
			t.Skipf("SKIP (loud): %s needs the go command to build bcshipd: %v", t.Name(), err)
		}
	}
	return p
}

// requireNative skips process tests when this test binary is emulated
// (`make arm64` runs GOARCH=arm64 tests under qemu-aarch64-static): they
// exec bcshipd, and qemu-user inside qemu-user — or an arm64 child of an
// emulated parent without binfmt_misc — does not run reliably.
func requireNative(t testing.TB) {
	t.Helper()
	out, err := exec.Command(goTool(t), "env", "GOHOSTARCH").Output()
	if err != nil {
		t.Skipf("SKIP (loud): %s: go env GOHOSTARCH: %v", t.Name(), err)
	}
	if host := strings.TrimSpace(string(out)); host != runtime.GOARCH {
		t.Skipf("SKIP (loud): %s execs bcshipd processes (and qemu-aarch64-static); this test binary is GOARCH=%s "+
			"on a %s host, i.e. emulated under qemu-user, where nested emulation of another process is not supported. "+
			"It runs in the native (GOARCH=%s) pass of make test.", t.Name(), runtime.GOARCH, host, host)
	}
}

// buildDaemon builds bcshipd for goarch the way `make bcshipd-arm64`
// does (static, trimmed, stripped) and returns its path.
func buildDaemon(t testing.TB, goarch string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "bcshipd-"+goarch)
	cmd := exec.Command(goTool(t), "build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building bcshipd for %s: %v\n%s", goarch, err, b)
	}
	return out
}

// qemuFor returns the command prefix that runs a goarch binary here: none
// natively, qemu-aarch64-static for arm64 on another host.
func qemuFor(t testing.TB, goarch string) []string {
	t.Helper()
	if goarch == runtime.GOARCH {
		return nil
	}
	if goarch != "arm64" {
		t.Skipf("SKIP (loud): no emulator known for GOARCH=%s", goarch)
	}
	q, err := exec.LookPath("qemu-aarch64-static")
	if err != nil {
		t.Skipf("SKIP (loud): %s needs qemu-aarch64-static to run arm64 bcshipd (apt-get install qemu-user-static): %v", t.Name(), err)
	}
	return []string{q}
}

// daemonProc is a running bcshipd and what it logged.
type daemonProc struct {
	t      testing.TB
	cmd    *exec.Cmd
	start  time.Time
	ready  chan map[string]any // the "ready" record
	mu     sync.Mutex
	logs   []string
	done   chan struct{} // stderr closed
	exited bool
}

// startDaemon runs prefix+bin with args and env added to the process
// environment. Cleanup stops it with SIGTERM and expects a clean exit.
func startDaemon(t testing.TB, prefix []string, bin string, args, env []string) *daemonProc {
	t.Helper()
	argv := append(append(append([]string(nil), prefix...), bin), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &daemonProc{t: t, cmd: cmd, ready: make(chan map[string]any, 1), done: make(chan struct{})}
	p.start = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go p.scan(stderr)
	t.Cleanup(func() { p.stop(t) })
	return p
}

func (p *daemonProc) scan(r io.Reader) {
	defer close(p.done)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		p.mu.Lock()
		p.logs = append(p.logs, line)
		p.mu.Unlock()
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "ready" {
			p.ready <- rec
		}
	}
}

// Logs is everything the daemon wrote to stderr so far.
func (p *daemonProc) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.logs, "\n")
}

// waitReady waits for the "ready" log record and returns the listen
// address it names.
func (p *daemonProc) waitReady(timeout time.Duration) string {
	p.t.Helper()
	select {
	case rec := <-p.ready:
		if line, err := json.Marshal(rec); err == nil {
			p.t.Logf("bcshipd pid %d: %s", p.cmd.Process.Pid, line)
		}
		return rec["addr"].(string)
	case <-p.done:
		p.t.Fatalf("bcshipd exited before ready:\n%s", p.Logs())
	case <-time.After(timeout):
		p.t.Fatalf("bcshipd not ready after %v:\n%s", timeout, p.Logs())
	}
	return ""
}

// rss is the daemon's resident set (VmRSS) in bytes.
func (p *daemonProc) rss() int64 {
	p.t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		p.t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				p.t.Fatalf("VmRSS %q: %v", v, err)
			}
			return kb << 10
		}
	}
	p.t.Fatal("no VmRSS in /proc/pid/status")
	return 0
}

// stop sends SIGTERM and expects exit status 0 and a "stopped" record.
func (p *daemonProc) stop(t testing.TB) {
	if p.exited {
		return
	}
	p.exited = true
	p.cmd.Process.Signal(syscall.SIGTERM)
	errc := make(chan error, 1)
	go func() { <-p.done; errc <- p.cmd.Wait() }()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("bcshipd exited with %v after SIGTERM:\n%s", err, p.Logs())
		} else if !strings.Contains(p.Logs(), `"msg":"stopped"`) {
			t.Errorf("bcshipd exited without its \"stopped\" record:\n%s", p.Logs())
		}
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-errc
		t.Errorf("bcshipd did not exit within 30 s of SIGTERM:\n%s", p.Logs())
	}
	if os.Getenv("BCSHIP_TEST_LOG") != "" {
		t.Logf("bcshipd log:\n%s", p.Logs())
	}
}

// freeAddr is a loopback address nothing listens on right now.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitAccepting dials addr until it accepts and returns when it did.
func waitAccepting(ctx context.Context, addr string) (time.Time, error) {
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			at := time.Now()
			c.Close()
			return at, nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("%s never accepted: %w", addr, err)
		case <-time.After(100 * time.Microsecond):
		}
	}
}

// signWithNewKey signs code with a fresh key and returns the key and a
// trust directory (for --trust / BCSHIP_TRUST) holding its public half,
// written as bcship keygen writes it.
func signWithNewKey(t testing.TB, code *bundle.Bundle) (ed25519.PublicKey, ed25519.PrivateKey, string) {
	t.Helper()
	pub, priv, err := bundle.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := code.Sign(priv); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keys, trust := filepath.Join(dir, "keys"), filepath.Join(dir, "trust")
	for _, d := range []string{keys, trust} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := bundle.WriteKeyFiles(keys, "dev", priv); err != nil {
		t.Fatal(err)
	}
	pubFile, err := os.ReadFile(filepath.Join(keys, "dev"+bundle.PublicKeySuffix))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(trust, "dev"+bundle.PublicKeySuffix), pubFile, 0o644); err != nil {
		t.Fatal(err)
	}
	return pub, priv, trust
}
