package bcship

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bcship/bcship/internal/chase"
	"github.com/bcship/bcship/transport/rdma"
)

// childEnv, when set, makes the test binary a node process instead of a
// test run: "id,elems,seed,nodes..." (see runChild).
const childEnv = "BCSHIP_TEST_NODE"

// childRDMAEnv, when set for a child, runs its node on the RDMA transport
// over that device (Config.RDMADevice).
const childRDMAEnv = "BCSHIP_TEST_NODE_RDMA"

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

// runChild serves one node of a chase list: it prints "ADDR host:port",
// reads "PEER id addr" lines until "GO", and serves until stdin closes or
// it is killed. After "GO", a "STATS" line makes it print "STATS " and
// its childStats as JSON.
func runChild(spec string) error {
	f := strings.Split(spec, ",")
	if len(f) < 4 {
		return fmt.Errorf("bad %s %q", childEnv, spec)
	}
	num := func(s string) uint64 { v, _ := strconv.ParseUint(s, 10, 64); return v }
	id := uint32(num(f[0]))
	var ids []uint32
	for _, s := range f[3:] {
		ids = append(ids, uint32(num(s)))
	}
	l := chase.New(ids, int(num(f[1])), num(f[2]))
	n, err := NewNode(Config{ID: id, Listen: "127.0.0.1:0", Insecure: true, DefaultTTL: 255, Logger: testLogger(),
		RDMADevice: os.Getenv(childRDMAEnv)})
	if err != nil {
		return err
	}
	defer n.Close()
	if err := n.RegisterRegion("chase", l.Regions[id]); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := n.Start(ctx); err != nil {
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
	go func() {
		for in.Scan() {
			if in.Text() == "STATS" {
				b, _ := json.Marshal(statsOf(n))
				fmt.Printf("STATS %s\n", b)
			}
		}
		stop()
	}()
	<-ctx.Done()
	return nil
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
		return exec.Command(os.Args[0])
	}
	qemu, qerr := exec.LookPath("qemu-aarch64-static")
	if qerr != nil || runtime.GOARCH != "arm64" {
		t.Skipf("SKIP (loud): cannot run the test binary as a child process (%v) and no qemu-aarch64-static to run it with", err)
	}
	return exec.Command(qemu, os.Args[0])
}

type child struct {
	id   uint32
	cmd  *exec.Cmd
	in   io.WriteCloser
	addr string
	out  chan string // its stdout after ADDR
}

// childStats is what a child reports on "STATS".
type childStats struct {
	Stats Stats
	Conns []rdma.ConnInfo // its RDMA connections, if on RDMA
}

func statsOf(n *Node) childStats {
	s := childStats{Stats: n.Stats()}
	rt, _ := n.Transport().(*rdma.Transport)
	if rt != nil {
		s.Conns = rt.Conns()
	}
	return s
}

// stats asks the child for its childStats.
func (c *child) stats(t testing.TB) childStats {
	t.Helper()
	if _, err := fmt.Fprintln(c.in, "STATS"); err != nil {
		t.Fatalf("node %d process: %v", c.id, err)
	}
	timeout := time.After(10 * time.Second)
	for {
		select {
		case line, ok := <-c.out:
			if !ok {
				t.Fatalf("node %d process closed its output", c.id)
			}
			js, found := strings.CutPrefix(line, "STATS ")
			if !found {
				continue
			}
			var s childStats
			if err := json.Unmarshal([]byte(js), &s); err != nil {
				t.Fatalf("node %d process: %v in %q", c.id, err, line)
			}
			return s
		case <-timeout:
			t.Fatalf("node %d process did not report its stats within 10s", c.id)
		}
	}
}

// startChildren starts one node process per id, all serving the same list,
// with env added to their environment.
func startChildren(t *testing.T, ids []uint32, elems int, seed uint64, env ...string) map[uint32]*child {
	t.Helper()
	var idList []string
	for _, id := range ids {
		idList = append(idList, strconv.Itoa(int(id)))
	}
	cs := map[uint32]*child{}
	for _, id := range ids {
		cmd := childCommand(t)
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d,%d,%d,%s", childEnv, id, elems, seed, strings.Join(idList, ",")))
		cmd.Env = append(cmd.Env, env...)
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
		c := &child{id: id, cmd: cmd, in: in, out: make(chan string, 16)}
		t.Cleanup(func() {
			in.Close()
			cmd.Process.Kill()
			cmd.Wait()
		})
		sc := bufio.NewScanner(out)
		if !sc.Scan() || !strings.HasPrefix(sc.Text(), "ADDR ") {
			t.Fatalf("node %d process did not report its address: %q", id, sc.Text())
		}
		c.addr = strings.TrimPrefix(sc.Text(), "ADDR ")
		go func() {
			// Drop what nobody waits for rather than block the child.
			for sc.Scan() {
				select {
				case c.out <- sc.Text():
				default:
				}
			}
			close(c.out)
		}()
		cs[id] = c
	}
	for _, c := range cs {
		for _, o := range cs {
			if o != c {
				fmt.Fprintf(c.in, "PEER %d %s\n", o.id, o.addr)
			}
		}
		fmt.Fprintln(c.in, "GO")
	}
	return cs
}

// TestProcesses runs three nodes as separate processes: ship, invoke by
// hash with no code sent the second time, forwards across all three,
// replies to the origin; then one process is killed mid-chase.
func TestProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	ids := []uint32{1, 2, 3}
	const elems, seed = 2000, 5
	cs := startChildren(t, ids, elems, seed)
	l := chase.New(ids, elems, seed)
	origin, err := NewNode(Config{ID: 100, Insecure: true, DefaultTTL: 255, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer origin.Close()
	for id, c := range cs {
		origin.SetPeer(id, c.addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := origin.Start(ctx); err != nil {
		t.Fatal(err)
	}
	code := chaseCode(t)

	s0 := origin.Stats()
	r1 := walk(t, ctx, origin, code, l, 300)
	s1 := origin.Stats()
	r2 := walk(t, ctx, origin, code, l, 300)
	s2 := origin.Stats()
	t.Logf("run 1: %d hops in %v, %d bytes sent, %d ships; run 2: %v, %d bytes, %d ships",
		r1.Hops, r1.Elapsed, s1.Transport.BytesSent-s0.Transport.BytesSent, s1.Ships-s0.Ships,
		r2.Elapsed, s2.Transport.BytesSent-s1.Transport.BytesSent, s2.Ships-s1.Ships)
	if s1.Ships-s0.Ships != 3 || s2.Ships != s1.Ships {
		t.Errorf("ships: %d in run 1 (want 3, one per node), %d in run 2 (want 0)", s1.Ships-s0.Ships, s2.Ships-s1.Ships)
	}
	if sent := s2.Transport.BytesSent - s1.Transport.BytesSent; sent >= s1.ShipBytes/3 {
		t.Errorf("run 2 sent %d bytes, not less than one copy of the code (%d)", sent, s1.ShipBytes/3)
	}

	// Kill node 3 while chases run through it.
	errc, at := chaseLoop(ctx, origin, code, l, 300)
	time.Sleep(50 * time.Millisecond)
	killed := time.Now()
	cs[3].cmd.Process.Kill()
	select {
	case err = <-errc:
	case <-time.After(5 * time.Second):
		t.Fatal("origin hangs after node 3 was killed")
	}
	if d := (<-at).Sub(killed); d > time.Second {
		t.Errorf("error %v after the kill, want ≤ 1s", d)
	}
	if !errors.Is(err, ErrPeerDown) {
		t.Fatalf("after kill: %v, want ErrPeerDown", err)
	}
	t.Logf("after kill: %v", err)
	// The first error may come from node 2 (it forwarded to node 3) before
	// the origin's own connection to node 3 reports it down, and that
	// report fails every invoke then pending (a chain may be anywhere). Wait
	// for it, so the survivors' walks below do not race it.
	waitPeerGone(t, origin, 3)
	// The survivors keep serving: a walk of one link on each.
	for _, id := range []uint32{1, 2} {
		var k uint64
		for _, key := range l.Order {
			if uint32(key>>32) == id {
				k = key
				break
			}
		}
		res, err := origin.Invoke(ctx, id, code, "chase", chase.Walk{Key: k, Remaining: 1}.Bytes())
		if err != nil {
			t.Fatalf("node %d after node 3 died: %v", id, err)
		}
		if w, _ := chase.Parse(res.Reply()); w.Remaining != 0 || w.Sum == 0 {
			t.Fatalf("node %d: walk %+v", id, w)
		}
	}
}

// waitPeerGone waits until n no longer counts peer as connected, and a
// moment more for the transport to tell the node.
func waitPeerGone(t *testing.T, n *Node, peer uint32) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		up := false
		for _, p := range n.Peers() {
			up = up || (p.ID == peer && p.Connected)
		}
		if !up {
			time.Sleep(20 * time.Millisecond)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d still connected to peer %d 3 s after it died", n.ID(), peer)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
