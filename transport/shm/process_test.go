package shm_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bc "github.com/bcship/bcship"
	"github.com/bcship/bcship/bundle"
	"github.com/bcship/bcship/internal/chase"
	"github.com/bcship/bcship/kernels"
	"github.com/bcship/bcship/loader"
	"github.com/bcship/bcship/toolchain"
)

// childEnv, when set, makes the test binary a node process on shared
// memory instead of a test run: "id,elems,seed,nodes..." (see runChild).
const childEnv = "BCSHIP_SHM_TEST_NODE"

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		if err := runChild(spec); err != nil {
			fmt.Fprintln(os.Stderr, "child node:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// logCounter counts log records by message, and mirrors them to stderr
// with BCSHIP_TEST_LOG set.
type logCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *logCounter) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *logCounter) WithGroup(string) slog.Handler            { return c }
func (c *logCounter) Handle(_ context.Context, r slog.Record) error {
	if os.Getenv("BCSHIP_TEST_LOG") != "" {
		fmt.Fprintf(os.Stderr, "%d %s\n", os.Getpid(), r.Message)
	}
	c.mu.Lock()
	c.n[r.Message]++
	c.mu.Unlock()
	return nil
}

func (c *logCounter) count(msg string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[msg]
}

// runChild serves one node of a chase list on shared memory: it prints
// "ADDR host:port", reads "PEER id addr" lines until "GO", prints "READY"
// and serves until it is killed or stdin closes; "COUNT msg" prints how
// often it logged msg.
func runChild(spec string) error {
	f := strings.Split(spec, ",")
	num := func(s string) uint64 { v, _ := strconv.ParseUint(s, 10, 64); return v }
	id := uint32(num(f[0]))
	var ids []uint32
	for _, s := range f[3:] {
		ids = append(ids, uint32(num(s)))
	}
	l := chase.New(ids, int(num(f[1])), num(f[2]))
	logs := &logCounter{n: map[string]int{}}
	n, err := bc.NewNode(bc.Config{ID: id, Listen: "127.0.0.1:0", Insecure: true, DefaultTTL: 255, SharedMemory: true,
		Logger: slog.New(logs)})
	if err != nil {
		return err
	}
	defer n.Close()
	if err := n.RegisterRegion("chase", l.Regions[id]); err != nil {
		return err
	}
	if err := n.Start(context.Background()); err != nil {
		return err
	}
	fmt.Printf("ADDR %s\n", n.Addr())
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var pid uint32
		var addr string
		if in.Text() == "GO" {
			break
		}
		if _, err := fmt.Sscanf(in.Text(), "PEER %d %s", &pid, &addr); err == nil {
			n.SetPeer(pid, addr)
		}
	}
	fmt.Println("READY")
	for in.Scan() {
		if msg, ok := strings.CutPrefix(in.Text(), "COUNT "); ok {
			fmt.Printf("COUNT %d\n", logs.count(msg))
		}
	}
	return nil
}

type child struct {
	id   uint32
	cmd  *exec.Cmd
	in   io.Writer
	addr string
	out  *bufio.Scanner
}

// count asks the child how often it logged msg.
func (c *child) count(t *testing.T, msg string) int {
	t.Helper()
	fmt.Fprintf(c.in, "COUNT %s\n", msg)
	if !c.out.Scan() {
		t.Fatalf("node %d process: no answer", c.id)
	}
	n, err := strconv.Atoi(strings.TrimPrefix(c.out.Text(), "COUNT "))
	if err != nil {
		t.Fatalf("node %d process said %q", c.id, c.out.Text())
	}
	return n
}

// childCommand runs this test binary again. Under qemu-user without
// binfmt_misc the kernel cannot exec an emulated binary, so the child then
// runs under qemu-aarch64-static explicitly.
func childCommand(t *testing.T) *exec.Cmd {
	t.Helper()
	probe := exec.Command(os.Args[0], "-test.run=^$")
	probe.Env = append(os.Environ(), childEnv+"=")
	err := probe.Run()
	if err == nil || !errors.Is(err, syscall.ENOEXEC) {
		return exec.Command(os.Args[0], "-test.run=^$")
	}
	qemu, qerr := exec.LookPath("qemu-aarch64-static")
	if qerr != nil || runtime.GOARCH != "arm64" {
		t.Skipf("SKIP (loud): cannot run the test binary as a child process (%v) and no qemu-aarch64-static to run it with", err)
	}
	return exec.Command(qemu, os.Args[0], "-test.run=^$")
}

func startChild(t *testing.T, id uint32, spec string) *child {
	t.Helper()
	cmd := childCommand(t)
	cmd.Env = append(os.Environ(), childEnv+"="+spec)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	sc := bufio.NewScanner(out)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "ADDR ") {
		t.Fatalf("node %d process did not report its address: %q", id, sc.Text())
	}
	return &child{id: id, cmd: cmd, in: in, addr: strings.TrimPrefix(sc.Text(), "ADDR "), out: sc}
}

// TestProcesses runs two data nodes as processes of their own and an
// origin in this one, all on shared memory: the chase kernel is shipped,
// forwarded between the processes and answered to the origin through the
// rings (both processes and the origin connect over shared memory, none
// falls back to TCP); then one process is killed -9 mid-chase and the
// origin gets ErrPeerDown within a second.
func TestProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	if fi, err := os.Stat("/dev/shm"); err != nil || !fi.IsDir() {
		t.Skip("SKIP (loud): no /dev/shm on this machine")
	}
	ids := []uint32{1, 2}
	const elems, seed = 2000, 5
	spec := func(id uint32) string { return fmt.Sprintf("%d,%d,%d,1,2", id, elems, seed) }
	cs := map[uint32]*child{}
	for _, id := range ids {
		cs[id] = startChild(t, id, spec(id))
	}
	for _, c := range cs {
		for _, o := range cs {
			if o != c {
				fmt.Fprintf(c.in, "PEER %d %s\n", o.id, o.addr)
			}
		}
		fmt.Fprintln(c.in, "GO")
	}
	for _, c := range cs {
		if !c.out.Scan() || c.out.Text() != "READY" {
			t.Fatalf("node %d process: %q, want READY", c.id, c.out.Text())
		}
	}
	logs := &logCounter{n: map[string]int{}}
	origin, err := bc.NewNode(bc.Config{ID: 100, Insecure: true, DefaultTTL: 255, SharedMemory: true, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer origin.Close()
	if err := origin.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		origin.SetPeer(c.id, c.addr)
	}
	obj, err := kernels.Object("chase", loader.HostMachine())
	if err != nil {
		t.Fatal(err)
	}
	code, err := toolchain.ParseCode(obj)
	if err != nil {
		t.Fatal(err)
	}
	l := chase.New(ids, elems, seed)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for round := range 3 {
		res := walk(t, ctx, origin, code, l, 150)
		t.Logf("round %d: %d hops in %v", round, res.Hops, res.Elapsed)
	}
	const connected, fellBack = "shared memory connected", "no shared memory with peer; using TCP"
	if n := logs.count(connected); n < 1 {
		t.Errorf("the origin set up %d shared-memory connections", n)
	}
	for _, c := range cs {
		// Each process: one connection with the origin or not (only the
		// head's node hears from it), one with the other process.
		if n := c.count(t, connected); n < 1 {
			t.Errorf("node %d process set up %d shared-memory connections", c.id, n)
		}
		if n := c.count(t, fellBack); n != 0 {
			t.Errorf("node %d process fell back to TCP %d times", c.id, n)
		}
	}
	if n := logs.count(fellBack); n != 0 {
		t.Errorf("the origin fell back to TCP %d times", n)
	}

	// Kill -9 a process while chases run through it.
	errc := make(chan error, 1)
	var failedAt time.Time
	go func() {
		for {
			_, err := origin.Invoke(ctx, uint32(l.Head>>32), code, "chase", chase.Walk{Key: l.Head, Remaining: 150}.Bytes())
			if err != nil {
				failedAt = time.Now()
				errc <- err
				return
			}
		}
	}()
	time.Sleep(100 * time.Millisecond)
	killed := time.Now()
	cs[2].cmd.Process.Signal(syscall.SIGKILL)
	select {
	case err = <-errc:
	case <-time.After(5 * time.Second):
		t.Fatal("no error 5 s after the kill: the origin hangs")
	}
	if !errors.Is(err, bc.ErrPeerDown) {
		t.Fatalf("chase through a killed process: %v, want ErrPeerDown", err)
	}
	if d := failedAt.Sub(killed); d > time.Second {
		t.Errorf("ErrPeerDown came %v after the kill, want ≤ 1 s", d)
	} else {
		t.Logf("ErrPeerDown %v after kill -9: %v", d, err)
	}
}

func walk(t *testing.T, ctx context.Context, origin *bc.Node, code *bundle.Bundle, l *chase.List, links int) *bc.Result {
	t.Helper()
	res, err := origin.Invoke(ctx, uint32(l.Head>>32), code, "chase", chase.Walk{Key: l.Head, Remaining: uint64(links)}.Bytes())
	if err != nil {
		t.Fatalf("chase of %d links: %v", links, err)
	}
	got, err := chase.Parse(res.Reply())
	if err != nil {
		t.Fatalf("status %d: %v", res.Status, err)
	}
	if want := l.Expect(links); got != want {
		t.Fatalf("chase of %d links = %+v, want %+v", links, got, want)
	}
	return res
}
