package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bcship/bcship/bundle"
	"github.com/bcship/bcship/internal/clusterfile"
)

// httpGet fetches path from addr with a bare HTTP/1.1 request.
func httpGet(t testing.TB, addr, path string) (int, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: test\r\n\r\n", path, addr)
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	head, body, _ := strings.Cut(string(b), "\r\n\r\n")
	var code int
	fmt.Sscanf(head, "HTTP/1.1 %d", &code)
	if !strings.Contains(head, fmt.Sprintf("Content-Length: %d\r\n", len(body))) {
		t.Errorf("GET %s: Content-Length does not match a %d-byte body:\n%s", path, len(body), head)
	}
	return code, body
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseOptionsEnvAndFlags(t *testing.T) {
	o, err := parseOptions([]string{"--listen", "127.0.0.1:9", "--insecure", "--region", "a=/x", "--region", "b=/y"},
		env(map[string]string{"BCSHIP_ID": "7", "BCSHIP_LISTEN": "ignored:1", "BCSHIP_PEERS": " 1=10.0.0.1:7401, 2=[::1]:7402 ",
			"BCSHIP_LOG_LEVEL": "debug", "BCSHIP_INSECURE": "0", "BCSHIP_TCP_CONGESTION": "cubic"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.id != 7 || o.listen != "127.0.0.1:9" || !o.insecure || len(o.regions) != 2 || o.regions[1] != (region{"b", "/y"}) {
		t.Fatalf("options %+v", o)
	}
	if len(o.peers) != 2 || o.peers[2] != "[::1]:7402" || o.logLevel.String() != "DEBUG" || o.congestion != "cubic" {
		t.Fatalf("peers %v level %v congestion %q", o.peers, o.logLevel, o.congestion)
	}
	// The listen address comes from the inline list when not given.
	o, err = parseOptions([]string{"--trust", "/k"}, env(map[string]string{"BCSHIP_ID": "2", "BCSHIP_PEERS": "1=h:1,2=h:2"}), io.Discard)
	if err != nil || o.listen != "h:2" || o.trustDir != "/k" || o.insecure {
		t.Fatalf("options %+v, %v", o, err)
	}
}

func TestParseOptionsClusterFile(t *testing.T) {
	cf := &clusterfile.File{Trust: "/tr", Nodes: []clusterfile.Node{{ID: 1, Addr: "127.0.0.1:7401"}, {ID: 2, Addr: "127.0.0.1:7402"}}}
	data, err := cf.Encode()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "cluster.toml")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	o, err := parseOptions([]string{"--id", "2", "--peers", p}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.listen != "127.0.0.1:7402" || o.trustDir != "/tr" || len(o.peers) != 2 || o.clusterFile != p {
		t.Fatalf("options %+v", o)
	}
}

func TestParseOptionsErrors(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		env     map[string]string
		setting string
	}{
		{nil, nil, "--id/BCSHIP_ID"},
		{[]string{"--id", "-1"}, nil, "--id/BCSHIP_ID"},
		{[]string{"--id", "1", "--insecure"}, nil, "--listen/BCSHIP_LISTEN"},
		{[]string{"--id", "1", "--listen", ":1"}, nil, "--trust/BCSHIP_TRUST"},
		{[]string{"--id", "1", "--listen", ":1"}, map[string]string{"BCSHIP_INSECURE": "1"}, "--trust/BCSHIP_TRUST"},
		{[]string{"--id", "1", "--insecure", "--peers", "1=nohostport"}, nil, "--peers/BCSHIP_PEERS"},
		{[]string{"--id", "1", "--insecure", "--peers", "x=h:1"}, nil, "--peers/BCSHIP_PEERS"},
		{[]string{"--id", "1", "--insecure", "--peers", "2=h:1,2=h:2"}, nil, "--peers/BCSHIP_PEERS"},
		{[]string{"--id", "1", "--insecure"}, map[string]string{"BCSHIP_PEERS": "/nonexistent/cluster.toml"}, "--peers/BCSHIP_PEERS"},
		{[]string{"--id", "1", "--insecure", "--listen", ":1", "--log-level", "loud"}, nil, "--log-level/BCSHIP_LOG_LEVEL"},
		{[]string{"--id", "1", "--insecure", "--listen", ":1", "extra"}, nil, "arguments"},
	} {
		_, err := parseOptions(tc.args, env(tc.env), io.Discard)
		var ce *configError
		if !errors.As(err, &ce) || ce.Setting != tc.setting {
			t.Errorf("parseOptions(%q, %v) = %v, want a configError for %s", tc.args, tc.env, err, tc.setting)
		}
	}
	if _, err := parseOptions([]string{"--region", "nofile"}, env(nil), io.Discard); err == nil {
		t.Error("--region without = accepted")
	}
}

// syncBuffer is a log sink the test reads while the daemon writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunHealthAndDrain runs the daemon in this process: JSON logs,
// /healthz and /metrics while ready, and a clean return on cancellation.
func TestRunHealthAndDrain(t *testing.T) {
	trust := t.TempDir()
	_, priv, err := bundle.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := bundle.WriteKeyFiles(trust, "k", priv); err != nil {
		t.Fatal(err)
	}
	web := freeAddr(t)
	o, err := parseOptions([]string{"--id", "4", "--listen", "127.0.0.1:0", "--trust", trust, "--http", web, "--drain-timeout", "2s"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, o, newLogger(&logs, o.logLevel), time.Now()) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), `"msg":"ready"`) {
		if time.Now().After(deadline) {
			t.Fatalf("not ready:\n%s", logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if code, body := httpGet(t, web, "/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if code, body := httpGet(t, web, "/metrics"); code != 200 || !strings.Contains(body, "\nbcship_up 1\n") || !strings.Contains(body, "# TYPE bcship_invocations_total counter") {
		t.Errorf("/metrics = %d\n%s", code, body)
	}
	if code, _ := httpGet(t, web, "/nope"); code != 404 {
		t.Errorf("/nope = %d", code)
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("run returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancellation")
	}
	var msgs []string
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", sc.Text())
		}
		msgs = append(msgs, rec["msg"].(string))
	}
	for _, want := range []string{"ready", "draining", "stopped"} {
		if !strings.Contains(strings.Join(msgs, ","), want) {
			t.Errorf("no %q record in %v", want, msgs)
		}
	}
	if _, err := net.DialTimeout("tcp", web, time.Second); err == nil {
		t.Error("health endpoint still accepting after shutdown")
	}
}

// TestRunRefusesEmptyTrust: a trust directory without keys is a
// configuration error, not a node that refuses everything.
func TestRunRefusesEmptyTrust(t *testing.T) {
	o, err := parseOptions([]string{"--id", "4", "--listen", "127.0.0.1:0", "--trust", t.TempDir()}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	err = run(context.Background(), o, newLogger(io.Discard, 0), time.Now())
	var ce *configError
	if !errors.As(err, &ce) {
		t.Fatalf("run = %v, want a configError", err)
	}
}
