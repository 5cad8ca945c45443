package main

import (
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bcship/bcship/internal/chase"
	"github.com/bcship/bcship/kernels"
	"github.com/bcship/bcship/loader"
)

// TestNetworkNamespaces runs two nodes in two network namespaces joined by
// a veth pair, on 10.77.x addresses that exist only there (root only).
func TestNetworkNamespaces(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	if os.Geteuid() != 0 {
		t.Skip("SKIP (loud): network namespaces need root")
	}
	ipTool, err := exec.LookPath("ip")
	if err != nil {
		t.Skipf("SKIP (loud): no ip tool (apt-get install iproute2): %v", err)
	}
	ip := func(args ...string) error {
		out, err := exec.Command(ipTool, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	tag := fmt.Sprintf("%d", os.Getpid()%100000)
	nsA, nsB := "bcsA"+tag, "bcsB"+tag
	if err := ip("netns", "add", nsA); err != nil {
		t.Skipf("SKIP (loud): cannot create network namespaces here: %v", err)
	}
	t.Cleanup(func() { ip("netns", "del", nsA) })
	if err := ip("netns", "add", nsB); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ip("netns", "del", nsB) })
	vA, vB := "vbA"+tag, "vbB"+tag
	for _, args := range [][]string{
		{"link", "add", vA, "type", "veth", "peer", "name", vB},
		{"link", "set", vA, "netns", nsA},
		{"link", "set", vB, "netns", nsB},
		{"-n", nsA, "addr", "add", "10.77.0.1/24", "dev", vA},
		{"-n", nsB, "addr", "add", "10.77.0.2/24", "dev", vB},
		{"-n", nsA, "link", "set", vA, "up"},
		{"-n", nsB, "link", "set", vB, "up"},
		{"-n", nsA, "link", "set", "lo", "up"},
		{"-n", nsB, "link", "set", "lo", "up"},
	} {
		if err := ip(args...); err != nil {
			t.Fatal(err)
		}
	}

	dir := t.TempDir()
	bin := buildBinary(t, dir)
	run(t, dir, bin, "--help") // skips where the binary cannot run (qemu-user)
	ids := []uint32{1, 2}
	l := chase.New(ids, 200, 21)
	for _, id := range ids {
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("chase%d.bin", id)), l.Regions[id], 0o644)
	}
	obj, err := kernels.Object("chase", loader.HostMachine())
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "chase.o"), obj, 0o644)
	cf := &clusterFile{Nodes: []clusterNode{{ID: 1, Addr: "10.77.0.1:7401"}, {ID: 2, Addr: "10.77.0.2:7402"}}}
	file := filepath.Join(dir, "cluster.toml")
	if err := writeCluster(cf, file); err != nil {
		t.Fatal(err)
	}
	for i, ns := range []string{nsA, nsB} {
		id := ids[i]
		c := exec.Command(ipTool, "netns", "exec", ns, bin, "serve", "--id", fmt.Sprint(id), "--peers", file,
			"--insecure", "--region", fmt.Sprintf("chase=%s", filepath.Join(dir, fmt.Sprintf("chase%d.bin", id))))
		logf, _ := os.Create(filepath.Join(dir, fmt.Sprintf("node%d.log", id)))
		c.Stdout, c.Stderr = logf, logf
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			c.Process.Kill()
			c.Wait()
			logf.Close()
		})
	}
	inA := func(args ...string) (string, error) {
		c := exec.Command(ipTool, append([]string{"netns", "exec", nsA, bin}, args...)...)
		c.Dir = dir
		out, err := c.CombinedOutput()
		return string(out), err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := inA("nodes", "--cluster", file)
		if err == nil && !strings.Contains(out, "down:") {
			t.Logf("nodes from namespace %s:\n%s", nsA, out)
			break
		}
		if time.Now().After(deadline) {
			logs, _ := os.ReadFile(filepath.Join(dir, "node2.log"))
			t.Fatalf("nodes did not come up: %v\n%s\nnode 2 log:\n%s", err, out, logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	links := 50
	want := l.Expect(links)
	arg := hex.EncodeToString(chase.Walk{Key: l.Head, Remaining: uint64(links)}.Bytes())
	out, err := inA("chase.o", "--cluster", file, "--to", fmt.Sprint(l.Head>>32), "--arg-hex", arg, "--as", "u64", "--ttl", "255")
	t.Logf("walk across namespaces:\n%s", out)
	if err != nil {
		t.Fatal(err)
	}
	if wantLine := fmt.Sprintf("as u64: %d 0 %d %d", want.Key, want.Hops, want.Sum); !strings.Contains(out, wantLine) {
		t.Fatalf("output lacks %q", wantLine)
	}
}
