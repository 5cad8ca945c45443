package main

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	bc "github.com/bcship/bcship"
	"github.com/bcship/bcship/toolchain"
)

// TestDrainLetsRunningKernelsFinish: SIGTERM (here: cancellation) while a
// kernel runs. The daemon must keep the node up until the run ends — by
// its own 400 ms deadline, since spin never returns — so the origin gets
// the node's ErrDeadline, not ErrClosed or ErrPeerDown from a node that
// pulled the rug.
func TestDrainLetsRunningKernelsFinish(t *testing.T) {
	tc, err := toolchain.Find(context.Background())
	if err != nil {
		t.Skipf("SKIP (loud): %s compiles testdata/nodetest.c and needs clang: %v", t.Name(), err)
	}
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	host, _ := toolchain.HostTriple()
	code, err := tc.Build(context.Background(), toolchain.BuildOptions{Sources: []string{"../../testdata/nodetest.c"}, Triples: []string{host}})
	if err != nil {
		t.Fatal(err)
	}
	o, err := parseOptions([]string{"--id", "5", "--listen", "127.0.0.1:0", "--insecure", "--deadline", "400ms", "--drain-timeout", "5s", "--log-level", "debug"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, o, newLogger(&logs, o.logLevel), time.Now()) }()
	addr := ""
	for deadline := time.Now().Add(10 * time.Second); addr == ""; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not ready:\n%s", logs.String())
		}
		for line := range strings.SplitSeq(logs.String(), "\n") {
			if strings.Contains(line, `"msg":"ready"`) {
				_, rest, _ := strings.Cut(line, `"addr":"`)
				addr, _, _ = strings.Cut(rest, `"`)
			}
		}
	}
	client, err := bc.NewNode(bc.Config{ID: 1 << 30, Peers: map[uint32]string{5: addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if err := client.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// No deadline on the request: the node's --deadline bounds the run.
	ictx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-ictx.Done():
		case <-time.After(10 * time.Second):
			cancel()
		}
	}()
	t0 := time.Now()
	invoked := make(chan error, 1)
	go func() {
		_, err := client.Invoke(ictx, 5, code, "spin", nil)
		invoked <- err
	}()
	for !strings.Contains(logs.String(), "code loaded") && time.Since(t0) < 5*time.Second {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // the kernel is spinning now
	stop()                             // SIGTERM
	// Draining, the node takes no new peers (the kernel still spins).
	refused := false
	for t1 := time.Now(); !refused && time.Since(t1) < 250*time.Millisecond; time.Sleep(5 * time.Millisecond) {
		if nc, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err != nil {
			refused = true
		} else {
			nc.Close()
		}
	}
	if !refused {
		t.Errorf("still accepting connections 250 ms into the drain")
	}
	if err := <-invoked; !errors.Is(err, bc.ErrDeadline) {
		t.Fatalf("spin during drain: %v; want the node's ErrDeadline (the run finished, not torn down)\n%s", err, logs.String())
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if el := time.Since(t0); el < 400*time.Millisecond {
		t.Fatalf("daemon stopped after %v, before the kernel's 400 ms deadline", el)
	}
	if !strings.Contains(logs.String(), `"msg":"draining","running":1`) {
		t.Errorf("drain did not see the running kernel:\n%s", logs.String())
	}
}
