package clusterfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	c := &File{Key: "/k/dev.key", Trust: "/k/trust", Nodes: []Node{{ID: 1, Addr: "127.0.0.1:7401", Arch: "amd64", PID: 7}, {ID: 2, Addr: "[::1]:7402"}}}
	data, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "cluster.toml")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if got.Path != p || got.Key != c.Key || got.Trust != c.Trust || len(got.Nodes) != 2 || got.Nodes[0] != c.Nodes[0] || got.Nodes[1] != c.Nodes[1] {
		t.Fatalf("read back %+v, wrote %+v", got, c)
	}
	if n, ok := got.Node(2); !ok || n.Addr != "[::1]:7402" {
		t.Fatalf("Node(2) = %+v, %v", n, ok)
	}
	if _, ok := got.Node(3); ok {
		t.Fatal("Node(3) found")
	}
	if p := got.Peers(); len(p) != 2 || p[1] != "127.0.0.1:7401" {
		t.Fatalf("Peers() = %v", p)
	}
	if strings.Contains(string(data), "Path") || strings.Contains(string(data), p) {
		t.Fatalf("Path was encoded:\n%s", data)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"[[node]]\nid = 1\naddr = \"a:1\"\n[[node]]\nid = 1\naddr = \"b:2\"\n", "listed twice"},
		{"[[node]]\nid = 1\naddr = \"nohostport\"\n", "addr"},
		{"colour = \"red\"\n", "unknown keys"},
		{"[[node]\n", "cluster.toml"},
	} {
		if _, err := Parse("cluster.toml", []byte(tc.text)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", tc.text, err, tc.want)
		}
	}
}

func TestLoadDefault(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv("BCSHIP_CLUSTER", "")
	if _, err := Load(""); !errors.Is(err, ErrNoCluster) {
		t.Fatalf("Load(\"\") with no cluster.toml = %v, want ErrNoCluster", err)
	}
	if _, err := Load("missing.toml"); errors.Is(err, ErrNoCluster) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load(named missing file) = %v, want ErrNotExist", err)
	}
}
