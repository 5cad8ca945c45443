package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/bcship/bcship/bundle"
	"github.com/spf13/cobra"
)

// shipVerbs makes FILE --to NODE the root command's default verb and
// returns the node and cluster commands to add to it.
func shipVerbs(root *cobra.Command, logger *slog.Logger) []*cobra.Command {
	var o shipOptions
	o.flags(root.Flags())
	root.Use = "bcship FILE.o|FILE.bcb --to NODE"
	root.Long += `

Without a command, "bcship FILE --to NODE" ships FILE and runs it there (see
"bcship ship --help"); the flags below are that verb's.`
	root.Args = cobra.ArbitraryArgs
	root.SuggestionsMinimumDistance = 2
	root.RunE = func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) == 0:
			return cmd.Help()
		case len(args) > 1:
			return fmt.Errorf("unknown command %q: to ship code run %s", args[0], shipUsage)
		}
		if _, err := os.Stat(args[0]); err != nil && !strings.ContainsAny(args[0], "./") {
			msg := fmt.Sprintf("unknown command %q for bcship, and no file of that name", args[0])
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += "; did you mean " + strings.Join(s, " or ") + "?"
			}
			return errors.New(msg)
		}
		return runShip(cmd.Context(), cmd.OutOrStdout(), logger, args[0], o)
	}
	return []*cobra.Command{newShip(logger), newServe(logger), newCluster(logger), newNodes(logger), newBench()}
}

func newCluster(logger *slog.Logger) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Start and stop a local cluster of bcship nodes",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newClusterUp(logger), newClusterDown())
	return cmd
}

func newClusterUp(logger *slog.Logger) *cobra.Command {
	var (
		n, basePort        int
		arm64, insecure    bool
		dir, out, arm64Bin string
		regions            []string
	)
	cmd := &cobra.Command{
		Use:   "up -n N [--arm64] [flags]",
		Short: "Start N local nodes on loopback and write cluster.toml",
		Long: `up starts N "bcship serve" processes on 127.0.0.1 (nodes 1..N), generates a
dev key in the state directory and makes every node trust it, and writes the
cluster file (--cluster, $BCSHIP_CLUSTER, or ./cluster.toml) with the
nodes, their process ids and the key, which "bcship FILE --to NODE" signs
with. Logs go to the state directory. "bcship cluster down" stops them.

With --arm64 the even-numbered nodes are arm64: a GOARCH=arm64 build of
bcship (--arm64-binary, else built with "go build" from this module) run
under qemu-aarch64-static, so one cluster mixes both architectures.`,
		Example: `  bcship cluster up -n 4
  bcship cluster up -n 2 --arm64 --region chase=chase.bin`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return clusterUp(cmd.Context(), cmd.OutOrStdout(), upOptions{n: n, basePort: basePort, arm64: arm64,
				insecure: insecure, dir: dir, out: clusterPath(out), arm64Bin: arm64Bin, regions: regions})
		},
	}
	f := cmd.Flags()
	f.IntVarP(&n, "nodes", "n", 3, "number of nodes")
	f.IntVar(&basePort, "base-port", 0, "node i listens on base-port+i-1 (default: free ports)")
	f.BoolVar(&arm64, "arm64", false, "run the even-numbered nodes as arm64 under qemu-aarch64-static")
	f.StringVar(&arm64Bin, "arm64-binary", "", "GOARCH=arm64 build of bcship for --arm64")
	f.BoolVar(&insecure, "insecure", false, "nodes run unsigned code too")
	f.StringVar(&dir, "dir", ".bcship-cluster", "state directory: keys, logs")
	f.StringVar(&out, "cluster", "", "cluster file to write (default $BCSHIP_CLUSTER or ./cluster.toml)")
	f.StringArrayVar(&regions, "region", nil, "region for every node: name=file, or name=file%d with the node id")
	return cmd
}

type upOptions struct {
	n, basePort        int
	arm64, insecure    bool
	dir, out, arm64Bin string
	regions            []string
}

func clusterUp(ctx context.Context, w io.Writer, o upOptions) error {
	if o.n < 1 || o.n > 256 {
		return fmt.Errorf("cluster up: -n must be 1-256")
	}
	if old, err := loadCluster(o.out); err == nil && slices.ContainsFunc(old.Nodes, func(n clusterNode) bool { return alive(n.PID) }) {
		return fmt.Errorf("cluster up: %s lists running nodes; run bcship cluster down first", o.out)
	}
	dir := absPath(o.dir)
	keys, trust := filepath.Join(dir, "keys"), filepath.Join(dir, "trust")
	for _, d := range []string{keys, trust} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	keyFile := filepath.Join(keys, "dev"+bundle.PrivateKeySuffix)
	if !fileExists(keyFile) {
		_, priv, err := bundle.GenerateKey()
		if err != nil {
			return err
		}
		if err := bundle.WriteKeyFiles(keys, "dev", priv); err != nil {
			return err
		}
	}
	pub, err := os.ReadFile(filepath.Join(keys, "dev"+bundle.PublicKeySuffix))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(trust, "dev"+bundle.PublicKeySuffix), pub, 0o644); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	armBin := ""
	if o.arm64 && o.n > 1 {
		if armBin, err = arm64Binary(ctx, dir, o.arm64Bin, runtime.GOARCH); err != nil {
			return err
		}
	}
	cf := &clusterFile{Key: keyFile, Trust: trust, Dir: dir}
	for i := 1; i <= o.n; i++ {
		port := o.basePort + i - 1
		if o.basePort == 0 {
			if port, err = freePort(); err != nil {
				return err
			}
		}
		arch := runtime.GOARCH
		if o.arm64 && i%2 == 0 {
			arch = "arm64"
		}
		cf.Nodes = append(cf.Nodes, clusterNode{ID: uint32(i), Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Arch: arch})
	}
	out := absPath(o.out)
	// Nodes read their peers from the file, so it is written first.
	if err := writeCluster(cf, out); err != nil {
		return err
	}
	for i := range cf.Nodes {
		nd := &cf.Nodes[i]
		args := []string{"serve", "--id", strconv.Itoa(int(nd.ID)), "--peers", out, "--trust", trust, "--key", keyFile}
		if o.insecure {
			args = append(args, "--insecure")
		}
		for _, r := range o.regions {
			if strings.Contains(r, "%d") {
				r = fmt.Sprintf(r, nd.ID)
			}
			name, file, _ := strings.Cut(r, "=")
			args = append(args, "--region", name+"="+absPath(file))
		}
		bin := self
		if nd.Arch == "arm64" && runtime.GOARCH != "arm64" {
			qemu, err := exec.LookPath("qemu-aarch64-static")
			if err != nil {
				return fmt.Errorf("cluster up: --arm64 needs qemu-aarch64-static (apt-get install qemu-user-static): %w", err)
			}
			bin, args = qemu, append([]string{armBin}, args...)
		}
		logf, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("node%d.log", nd.ID)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		c := exec.Command(bin, args...)
		c.Stdout, c.Stderr = logf, logf
		c.Dir = dir
		c.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // outlive this command
		err = c.Start()
		logf.Close()
		if err != nil {
			return fmt.Errorf("starting node %d: %w", nd.ID, err)
		}
		nd.PID = c.Process.Pid
		c.Process.Release()
	}
	if err := writeCluster(cf, out); err != nil {
		return err
	}
	// Wait until every node accepts connections (emulated ones are slow).
	deadline := time.Now().Add(30 * time.Second)
	for _, nd := range cf.Nodes {
		for {
			c, err := net.DialTimeout("tcp", nd.Addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			if !alive(nd.PID) || time.Now().After(deadline) {
				return fmt.Errorf("node %d (pid %d) did not come up; see %s", nd.ID, nd.PID, filepath.Join(dir, fmt.Sprintf("node%d.log", nd.ID)))
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tADDR\tARCH\tPID")
	for _, nd := range cf.Nodes {
		fmt.Fprintf(tw, "node%d\t%s\t%s\t%d\n", nd.ID, nd.Addr, nd.Arch, nd.PID)
	}
	tw.Flush()
	fmt.Fprintf(w, "wrote %s; dev key %s (trusted by every node); logs in %s\n", out, keyFile, dir)
	return nil
}

// arm64Binary returns a GOARCH=arm64 bcship: the given one, this binary when
// it is arm64, or one built from the module in the working directory.
func arm64Binary(ctx context.Context, dir, given, goarch string) (string, error) {
	if given != "" {
		return absPath(given), nil
	}
	if goarch == "arm64" {
		return os.Executable()
	}
	out := filepath.Join(dir, "bcship-arm64")
	c := exec.CommandContext(ctx, "go", "build", "-o", out, "github.com/bcship/bcship/cmd/bcship")
	c.Env = append(os.Environ(), "GOARCH=arm64", "CGO_ENABLED=0")
	if b, err := c.CombinedOutput(); err != nil {
		return "", fmt.Errorf("cluster up: building bcship for arm64 (or pass --arm64-binary): %v\n%s", err, b)
	}
	return out, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// alive reports whether pid is a running bcship serve process (not a pid
// reused by something else since).
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err == nil {
		// A zombie (state Z) has exited.
		if i := strings.LastIndexByte(string(stat), ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			return false
		}
	}
	return strings.Contains(string(cmdline), "serve\x00")
}

func newClusterDown() *cobra.Command {
	var file string
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop the nodes bcship cluster up started",
		Long: `down sends SIGTERM to every node process listed in the cluster file, waits
for them to exit (SIGKILL after --wait), and clears their pids from the file.
Only processes that are still "bcship serve" are signalled.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cf, err := loadCluster(file)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			for i := range cf.Nodes {
				nd := &cf.Nodes[i]
				if !alive(nd.PID) {
					nd.PID = 0
					continue
				}
				syscall.Kill(nd.PID, syscall.SIGTERM)
				end := time.Now().Add(wait)
				for alive(nd.PID) && time.Now().Before(end) {
					time.Sleep(20 * time.Millisecond)
				}
				how := "stopped"
				if alive(nd.PID) {
					syscall.Kill(nd.PID, syscall.SIGKILL)
					how = "killed"
				}
				fmt.Fprintf(w, "node%d (pid %d) %s\n", nd.ID, nd.PID, how)
				nd.PID = 0
			}
			return writeCluster(cf, cf.Path)
		},
	}
	cmd.Flags().StringVar(&file, "cluster", "", "cluster file (default $BCSHIP_CLUSTER or ./cluster.toml)")
	cmd.Flags().DurationVar(&wait, "wait", 5*time.Second, "time to exit before SIGKILL")
	return cmd
}

func newNodes(logger *slog.Logger) *cobra.Command {
	var file string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "nodes",
		Short: "List the cluster's nodes with triple, LLVM version and round-trip time",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cf, err := loadCluster(file)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			n, err := clientNode(ctx, cf, 0, "")
			if err != nil {
				return err
			}
			defer n.Close()
			type row struct {
				rtt time.Duration
				err error
			}
			rows := make([]row, len(cf.Nodes))
			done := make(chan int)
			for i, nd := range cf.Nodes {
				go func() {
					// The first ping dials; the second is the round trip.
					_, err := n.Ping(ctx, nd.ID)
					var rtt time.Duration
					if err == nil {
						rtt, err = n.Ping(ctx, nd.ID)
					}
					rows[i] = row{rtt, err}
					done <- i
				}()
			}
			for range cf.Nodes {
				<-done
			}
			peers := map[uint32]peerView{}
			for _, p := range n.Peers() {
				peers[p.ID] = peerView{Triples: strings.Join(p.Hello.Triples, ","), LLVM: int(p.Hello.LLVM), Caps: p.Hello.Caps.String()}
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NODE\tADDR\tTRIPLE\tLLVM\tCAPS\tRTT")
			for i, nd := range cf.Nodes {
				if rows[i].err != nil {
					fmt.Fprintf(tw, "node%d\t%s\t-\t-\t-\tdown: %v\n", nd.ID, nd.Addr, rows[i].err)
					continue
				}
				p := peers[nd.ID]
				llvm := "none"
				if p.LLVM > 0 {
					llvm = strconv.Itoa(p.LLVM)
				}
				fmt.Fprintf(tw, "node%d\t%s\t%s\t%s\t%s\t%v\n", nd.ID, nd.Addr, p.Triples, llvm, p.Caps, rows[i].rtt.Round(time.Microsecond))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&file, "cluster", "", "cluster file (default $BCSHIP_CLUSTER or ./cluster.toml)")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "give up on nodes that do not answer by then")
	return cmd
}

// peerView is what nodes prints of a peer's HELLO.
type peerView struct {
	Triples string
	LLVM    int
	Caps    string
}
