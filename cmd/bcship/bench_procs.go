package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	bc "github.com/bcship/bcship"
	"github.com/bcship/bcship/bundle"
	"github.com/bcship/bcship/xrdma"
	"github.com/spf13/cobra"
)

// The protocol between bench --procs and its data-node children, one line
// each way at a time on stdin/stdout:
//
//	child:  ADDR host:port        (listening, data and AM handler installed)
//	parent: PEER id host:port     (repeated for every data node)
//	parent: GO
//	child:  READY                 (connected to every peer)
//
// The child serves until its stdin closes, so it never outlives the
// benchmark, whatever way that ends.

// procStartTimeout bounds a child's start, up to READY.
const procStartTimeout = 30 * time.Second

// procEnv runs each data node in a child process ("bench node"), restarted
// for every size: the children build the same seeded data as the origin
// (xset) and install their part.
type procEnv struct {
	o      xbenchOptions
	log    *slog.Logger
	stderr io.Writer
	priv   ed25519.PrivateKey
	pub    ed25519.PublicKey
	exe    string
	kids   []*xproc
	origin *bc.Node
	netns  *netnsNet // --netns: the nodes' namespaces; nil: loopback
}

type xproc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string // stdout lines; closed at EOF
}

func newProcEnv(o xbenchOptions, log *slog.Logger, stderr io.Writer) (*procEnv, error) {
	pub, priv, err := bundle.GenerateKey()
	if err != nil {
		return nil, err
	}
	exe := o.nodeBinary
	if exe == "" {
		if exe, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	e := &procEnv{o: o, log: log, stderr: stderr, priv: priv, pub: pub, exe: exe}
	if o.netns {
		if e.netns, err = newNetns(o.nodes); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// listen is the address data node id (or, for id == nodes, the origin)
// listens on.
func (e *procEnv) listen(id int) string {
	switch {
	case e.netns == nil:
		return "127.0.0.1:0"
	case id == e.o.nodes:
		return e.netns.originAddr() + ":0"
	}
	return e.netns.addr(id) + ":0"
}

func (e *procEnv) key() ed25519.PrivateKey { return e.priv }

func (e *procEnv) at(ctx context.Context, size int, _ *xset) (*bc.Node, error) {
	if err := e.stop(); err != nil {
		e.log.Warn("stopping the previous data nodes", "err", err)
	}
	ctx, cancel := context.WithTimeout(ctx, procStartTimeout)
	defer cancel()
	addrs := make([]string, e.o.nodes)
	for id := range e.o.nodes {
		k, err := e.spawn(id, size)
		if err != nil {
			return nil, err
		}
		e.kids = append(e.kids, k)
		line, err := k.expect(ctx, "ADDR ")
		if err != nil {
			return nil, fmt.Errorf("data node %d: %w", id, err)
		}
		addrs[id] = line
	}
	for id, k := range e.kids {
		var b strings.Builder
		for pid, a := range addrs {
			if pid != id {
				fmt.Fprintf(&b, "PEER %d %s\n", pid, a)
			}
		}
		b.WriteString("GO\n")
		if _, err := io.WriteString(k.stdin, b.String()); err != nil {
			return nil, fmt.Errorf("data node %d: %w", id, err)
		}
	}
	for id, k := range e.kids {
		if _, err := k.expect(ctx, "READY"); err != nil {
			return nil, fmt.Errorf("data node %d: %w", id, err)
		}
	}
	n, err := bc.NewNode(bc.Config{ID: uint32(e.o.nodes), Listen: e.listen(e.o.nodes), DefaultTTL: xrdma.MaxTTL,
		BusyPoll: e.o.busy, Logger: e.log, RDMADevice: e.o.rdmaDevice()})
	if err != nil {
		return nil, err
	}
	e.origin = n
	if err := n.Start(ctx); err != nil {
		return nil, err
	}
	for id, a := range addrs {
		n.SetPeer(uint32(id), a)
	}
	for id := range addrs {
		if _, err := n.Ping(ctx, uint32(id)); err != nil {
			return nil, fmt.Errorf("origin to data node %d: %w", id, err)
		}
	}
	return n, nil
}

func (e *procEnv) spawn(id, size int) (*xproc, error) {
	o := e.o
	args := []string{e.exe, "bench", "node", "--op", o.op.name, "--id", strconv.Itoa(id), "--listen", e.listen(id),
		"--nodes", strconv.Itoa(o.nodes), "--size", strconv.Itoa(size), "--data", strconv.Itoa(o.data),
		"--seed", strconv.FormatUint(o.seed, 10), "--trust", hex.EncodeToString(e.pub),
		"--busy-poll=" + strconv.FormatBool(o.busy)}
	if dev := o.rdmaDevice(); dev != "" {
		args = append(args, "--rdma-dev", dev)
	}
	if e.netns != nil {
		args = append(e.netns.command(id), args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stderr = e.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting data node %d (%s): %w", id, e.exe, err)
	}
	k := &xproc{cmd: cmd, stdin: stdin, lines: make(chan string, 4)}
	go func() {
		defer close(k.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			k.lines <- sc.Text()
		}
	}()
	return k, nil
}

// settle: the origin is new for every size and its connections are set
// up after the children installed their data, so its RDMA region tables
// are complete from the start.
func (e *procEnv) settle(context.Context, *xset) error { return nil }

func (e *procEnv) framesRecv() (uint64, bool) { return 0, false }

// rdmaDevice is the device nodes run on, or "" for TCP.
func (o *xbenchOptions) rdmaDevice() string {
	if o.transport == "rdma" {
		return o.rdmaDev
	}
	return ""
}

// expect waits for the child's next line, which must start with prefix,
// and returns the rest.
func (k *xproc) expect(ctx context.Context, prefix string) (string, error) {
	select {
	case l, ok := <-k.lines:
		if !ok {
			return "", fmt.Errorf("exited before %q", strings.TrimSpace(prefix))
		}
		rest, found := strings.CutPrefix(l, prefix)
		if !found {
			return "", fmt.Errorf("said %q, want %q", l, strings.TrimSpace(prefix))
		}
		return rest, nil
	case <-ctx.Done():
		return "", fmt.Errorf("waiting for %q: %w", strings.TrimSpace(prefix), ctx.Err())
	}
}

// close stops the nodes and removes the namespaces.
func (e *procEnv) close() error {
	err := e.stop()
	if e.netns != nil {
		err = errors.Join(err, e.netns.close())
		e.netns = nil
	}
	return err
}

// stop stops the origin and the children: closing a child's stdin ends
// it; one that is still there after 5 s is killed.
func (e *procEnv) stop() error {
	var errs []error
	if e.origin != nil {
		errs = append(errs, e.origin.Close())
		e.origin = nil
	}
	for _, k := range e.kids {
		k.stdin.Close()
	}
	for _, k := range e.kids {
		done := make(chan error, 1)
		go func() { done <- k.cmd.Wait() }()
		select {
		case err := <-done:
			errs = append(errs, err)
		case <-time.After(5 * time.Second):
			k.cmd.Process.Kill()
			errs = append(errs, fmt.Errorf("data node pid %d did not stop; killed: %w", k.cmd.Process.Pid, <-done))
		}
	}
	e.kids = nil
	return errors.Join(errs...)
}

// newBenchNode is the data node that bench --procs starts: hidden, its
// interface is the line protocol above.
func newBenchNode() *cobra.Command {
	var o xbenchOptions
	var opName, trust string
	var id, size int
	var listen string
	cmd := &cobra.Command{
		Use:    "node",
		Short:  "A data node for bench --procs (internal)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			op, ok := xops[opName]
			if !ok {
				return fmt.Errorf("bench node: unknown --op %q", opName)
			}
			o.op = op
			pub, err := hex.DecodeString(trust)
			if err != nil || len(pub) != ed25519.PublicKeySize {
				return fmt.Errorf("bench node: --trust wants a hex ed25519 public key")
			}
			logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
			return runBenchNode(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout(), logger, o, uint32(id), listen, size, pub)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opName, "op", "", "operation: chase, lookup or gather")
	f.IntVar(&id, "id", 0, "this node's id")
	f.StringVar(&listen, "listen", "127.0.0.1:0", "address to listen on")
	f.IntVar(&o.nodes, "nodes", 0, "data nodes in the cluster")
	f.IntVar(&size, "size", 0, "the operation's size")
	f.IntVar(&o.data, "data", 0, "the operation's data size")
	f.Uint64Var(&o.seed, "seed", 1, "seed of the random placement")
	f.StringVar(&trust, "trust", "", "hex ed25519 public key whose code this node runs")
	f.BoolVar(&o.busy, "busy-poll", false, "busy-poll the sockets")
	f.StringVar(&o.rdmaDev, "rdma-dev", "", "run on the RDMA transport over this device")
	return cmd
}

func runBenchNode(ctx context.Context, in io.Reader, out io.Writer, logger *slog.Logger, o xbenchOptions, id uint32, listen string, size int, pub []byte) error {
	if int(id) >= o.nodes {
		return fmt.Errorf("bench node: --id %d of %d nodes", id, o.nodes)
	}
	n, err := bc.NewNode(bc.Config{ID: id, Listen: listen, Trust: []ed25519.PublicKey{pub},
		DefaultTTL: xrdma.MaxTTL, BusyPoll: o.busy, Logger: logger, RDMADevice: o.rdmaDev})
	if err != nil {
		return err
	}
	defer n.Close()
	if err := n.Start(ctx); err != nil {
		return err
	}
	set, err := newXSet(o, size)
	if err != nil {
		return err
	}
	am, err := xrdma.LoadCode(o.op.name, nil)
	if err != nil {
		return err
	}
	me := []xrdma.Target{n}
	if err := set.install(me); err != nil {
		return err
	}
	if err := am.InstallAM(me); err != nil {
		return err
	}
	fmt.Fprintf(out, "ADDR %s\n", n.Addr())
	sc := bufio.NewScanner(in)
	var peers []uint32
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 3 && f[0] == "PEER":
			p, err := strconv.ParseUint(f[1], 10, 32)
			if err != nil {
				return fmt.Errorf("bench node: %q: %w", sc.Text(), err)
			}
			n.SetPeer(uint32(p), f[2])
			peers = append(peers, uint32(p))
		case len(f) == 1 && f[0] == "GO":
			// Dial every peer now: no measured run should pay for it.
			pctx, cancel := context.WithTimeout(ctx, procStartTimeout)
			for _, p := range peers {
				if _, err := n.Ping(pctx, p); err != nil {
					cancel()
					return fmt.Errorf("bench node %d: peer %d: %w", id, p, err)
				}
			}
			cancel()
			fmt.Fprintln(out, "READY")
		default:
			return fmt.Errorf("bench node: unexpected %q", sc.Text())
		}
	}
	return sc.Err() // stdin closed: the benchmark is over
}
