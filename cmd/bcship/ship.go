package main

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	bc "github.com/bcship/bcship"
	"github.com/bcship/bcship/bundle"
	"github.com/bcship/bcship/toolchain"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// shipOptions are the flags of `bcship FILE --to NODE`.
type shipOptions struct {
	to, entry, argHex, argFile, as, cluster, key string
	timeout                                      time.Duration
	ttl                                          uint8
}

func (o *shipOptions) flags(f *pflag.FlagSet) {
	f.StringVar(&o.to, "to", "", "node to run on: node3, 3 or host:port")
	f.StringVar(&o.entry, "entry", "", "entry point (default: the code's only entry, else main)")
	f.StringVar(&o.argHex, "arg-hex", "", "argument bytes, hex")
	f.StringVar(&o.argFile, "arg-file", "", "argument bytes from a file (- for stdin)")
	f.DurationVar(&o.timeout, "timeout", 5*time.Second, "give up after this long (bounds the kernel's chain too)")
	f.StringVar(&o.as, "as", "", "also decode the reply: u64 (little-endian words) or string")
	f.StringVar(&o.cluster, "cluster", "", "cluster file (default $BCSHIP_CLUSTER or ./cluster.toml)")
	f.StringVar(&o.key, "key", "", "sign the code with this private key (default: the cluster file's key)")
	f.Uint8Var(&o.ttl, "ttl", bc.DefaultTTL, "forwards the kernel may make")
}

// shipUsage is the root command's usage line for its default verb.
const shipUsage = "bcship FILE.o|FILE.bcb --to NODE [--entry E] [--arg-hex HEX|--arg-file F] [--timeout 5s] [--as u64|string]"

func newShip(logger *slog.Logger) *cobra.Command {
	var o shipOptions
	cmd := &cobra.Command{
		Use:   "ship FILE.o|FILE.bcb --to NODE [flags]",
		Short: "Run a kernel on a node and print its result (also: bcship FILE --to NODE)",
		Long: `ship runs code on a node of the cluster and prints the result: the reply
bytes in hex (and decoded with --as), the status the entry returned, and the
number of forwards. FILE is a bundle from "bcship build" or a raw relocatable
object (clang -c), which is wrapped into a one-triple bundle.

The code is signed with --key, or with the cluster file's key (bcship cluster
up writes a dev key and makes the nodes trust it). The first run on a node
ships the code; later runs send only its hash. "bcship FILE --to NODE" is the
same command.`,
		Example: `  bcship chase.bcb --to node2 --arg-hex 0000000002000000... --as u64
  bcship ship k.o --to 127.0.0.1:7403 --entry sum --as u64`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runShip(cmd.Context(), cmd.OutOrStdout(), logger, args[0], o)
		},
	}
	o.flags(cmd.Flags())
	return cmd
}

func runShip(ctx context.Context, w io.Writer, logger *slog.Logger, file string, o shipOptions) error {
	if o.to == "" {
		return fmt.Errorf("ship: --to NODE is required (node3, 3 or host:port)")
	}
	if o.as != "" && o.as != "u64" && o.as != "string" {
		return fmt.Errorf("ship: --as %q: want u64 or string", o.as)
	}
	code, err := toolchain.ReadCode(file)
	if err != nil {
		return err
	}
	entry, err := pickEntry(code, o.entry)
	if err != nil {
		return err
	}
	arg, err := readArg(o)
	if err != nil {
		return err
	}
	cf, err := loadCluster(o.cluster)
	if err != nil && !(errors.Is(err, errNoCluster) && strings.Contains(o.to, ":")) {
		return err
	}
	id, addr, err := resolveNode(cf, o.to)
	if err != nil {
		return err
	}
	key := o.key
	if key == "" && cf != nil {
		key = cf.Key
	}
	if key != "" && code.Signature == nil {
		priv, err := bundle.LoadPrivateKey(key)
		if err != nil {
			return err
		}
		if err := code.Sign(priv); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	n, err := clientNode(ctx, cf, o.ttl, key)
	if err != nil {
		return err
	}
	defer n.Close()
	n.SetPeer(id, addr)
	res, err := n.Invoke(ctx, id, code, entry, arg)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("no result from node %d within %v: %w", id, o.timeout, err)
		}
		return err
	}
	printResult(w, res, o.as)
	return nil
}

// clientNode is the CLI's own node: it listens nowhere and reaches the
// cluster's nodes (which answer over the connections it opens).
//
// With clang or llc installed it cross-compiles bundle bitcode for nodes
// that lack an object for their triple and cannot compile it themselves,
// signing the result with key (when given).
func clientNode(ctx context.Context, cf *clusterFile, ttl uint8, key string) (*bc.Node, error) {
	// A client's own node events are noise on the command line.
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := bc.Config{ID: clientID(), Logger: quiet, DefaultTTL: ttl, Toolchain: toolchain.New(toolchain.Config{Logger: quiet})}
	if key != "" {
		priv, err := bundle.LoadPrivateKey(key)
		if err != nil {
			return nil, err
		}
		cfg.SigningKey = priv
	}
	if cf != nil {
		cfg.Peers = cf.Peers()
	}
	n, err := bc.NewNode(cfg)
	if err != nil {
		return nil, err
	}
	if err := n.Start(ctx); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

func pickEntry(code *bundle.Bundle, flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	entries := code.Entries
	if len(entries) == 0 {
		// A wrapped raw object lists no entries; read them from the object.
		for _, o := range code.Objects {
			if obj, ok := code.Object(o.Triple); ok {
				if es, err := toolchain.Entries(obj); err == nil {
					entries = es
					break
				}
			}
		}
	}
	switch {
	case len(entries) == 1:
		return entries[0], nil
	case slices.Contains(entries, "main") || len(entries) == 0:
		return "main", nil
	}
	return "", fmt.Errorf("ship: the code has entries %v: choose one with --entry", entries)
}

func readArg(o shipOptions) ([]byte, error) {
	switch {
	case o.argHex != "" && o.argFile != "":
		return nil, fmt.Errorf("ship: --arg-hex and --arg-file are exclusive")
	case o.argHex != "":
		b, err := hex.DecodeString(strings.NewReplacer(" ", "", ":", "", "_", "").Replace(o.argHex))
		if err != nil {
			return nil, fmt.Errorf("ship: --arg-hex: %w", err)
		}
		return b, nil
	case o.argFile == "-":
		return io.ReadAll(os.Stdin)
	case o.argFile != "":
		return os.ReadFile(o.argFile)
	}
	return nil, nil
}

func printResult(w io.Writer, res *bc.Result, as string) {
	fmt.Fprintf(w, "node %d: status %d, %d hops, %v\n", res.Node, res.Status, res.Hops, res.Elapsed.Round(time.Microsecond))
	if len(res.Replies) == 0 {
		fmt.Fprintln(w, "no reply")
	}
	for i, r := range res.Replies {
		if len(res.Replies) > 1 {
			fmt.Fprintf(w, "reply %d: ", i+1)
		} else {
			fmt.Fprint(w, "reply: ")
		}
		fmt.Fprintf(w, "%d bytes\n%s", len(r), hex.Dump(r))
		switch as {
		case "u64":
			var words []string
			for len(r) >= 8 {
				words = append(words, fmt.Sprint(binary.LittleEndian.Uint64(r)))
				r = r[8:]
			}
			fmt.Fprintf(w, "as u64: %s\n", strings.Join(words, " "))
		case "string":
			fmt.Fprintf(w, "as string: %q\n", string(r))
		}
	}
}
