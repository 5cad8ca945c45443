package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	bc "github.com/bcship/bcship"
	"github.com/bcship/bcship/bundle"
	"github.com/bcship/bcship/toolchain"
	"github.com/spf13/cobra"
)

func newServe(logger *slog.Logger) *cobra.Command {
	var (
		id                     uint32
		listen, peers, trust   string
		key                    string
		regions                []string
		insecure, busy, noLLVM bool
		cacheMiB               int64
		ttl                    uint8
		deadline               time.Duration
		transportKind, rdmaDev string
		congestion             string
	)
	cmd := &cobra.Command{
		Use:   "serve --id N [--listen ADDR] [--peers cluster.toml] [flags]",
		Short: "Run a node: accept shipped code and run it next to registered data",
		Long: `serve runs one bcship node until interrupted. It listens for peers, accepts
shipped code signed by a trusted key (or any code with --insecure), loads it
with bcship's own loader and runs it against the node's registered regions.

Peers come from the cluster file (--peers, else $BCSHIP_CLUSTER, else
./cluster.toml, when present); --listen defaults to this node's address
there. Regions are files read into memory: --region name=file, repeatable.
The trust directory (--trust, else the cluster file's) holds *.pub keys.

With llc installed the node also compiles bundle bitcode for its own triple
when a bundle has no object for it (--no-llvm turns that off).

--transport rdma --rdma-dev DEV runs the node over RDMA (pure-Go verbs, e.g.
soft-RoCE rxe0): messages over RC queue pairs to peers that have RDMA (TCP to
those that do not), regions registered with the device so peers GET and PUT
them one-sided. The TCP listener stays: it carries HELLO and the RDMA setup.

--transport shm runs the node over shared memory with the peers on the same
host (same kernel, same /dev/shm, same user): rings in /dev/shm set up over
the TCP connection on first use; other peers are reached over TCP.`,
		Example: `  bcship serve --id 3 --listen :7403 --peers cluster.toml --region chase=chase3.bin
  bcship serve --id 1 --listen 127.0.0.1:7401 --insecure
  bcship serve --id 2 --listen 10.9.0.1:7402 --transport rdma --rdma-dev rxe0 --insecure
  bcship serve --id 4 --listen 127.0.0.1:7404 --transport shm --insecure`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var cf *clusterFile
			if peers != "" || fileExists(clusterPath("")) {
				var err error
				if cf, err = loadCluster(peers); err != nil {
					return err
				}
			}
			cfg := bc.Config{ID: id, Listen: listen, Insecure: insecure, BusyPoll: busy, TCPCongestion: congestion,
				CacheBytes: cacheMiB << 20, DefaultTTL: ttl, Deadline: deadline, Logger: logger}
			switch transportKind {
			case "tcp":
				if rdmaDev != "" {
					return fmt.Errorf("serve: --rdma-dev needs --transport rdma")
				}
			case "rdma":
				if rdmaDev == "" {
					return fmt.Errorf("serve: --transport rdma needs --rdma-dev (see bcship rdma devices)")
				}
				cfg.RDMADevice = rdmaDev
			case "shm":
				if rdmaDev != "" {
					return fmt.Errorf("serve: --rdma-dev needs --transport rdma")
				}
				cfg.SharedMemory = true
			default:
				return fmt.Errorf("serve: --transport %q: want tcp, shm or rdma", transportKind)
			}
			if cf != nil {
				cfg.Peers = cf.Peers()
				if n, ok := cf.Node(id); ok && listen == "" {
					cfg.Listen = n.Addr
				}
				if trust == "" {
					trust = cf.Trust
				}
				if key == "" {
					key = cf.Key
				}
			}
			if cfg.Listen == "" {
				return fmt.Errorf("serve: --listen is required (node %d is not in a cluster file)", id)
			}
			if trust != "" {
				keys, err := bundle.LoadTrustDir(trust)
				if err != nil {
					return err
				}
				cfg.Trust = keys
			}
			if !insecure && len(cfg.Trust) == 0 {
				return fmt.Errorf("serve: no trusted keys: pass --trust DIR (with *.pub files) or --insecure")
			}
			if key != "" {
				priv, err := bundle.LoadPrivateKey(key)
				if err != nil {
					return err
				}
				cfg.SigningKey = priv
			}
			if !noLLVM {
				cfg.Toolchain = toolchain.New(toolchain.Config{Logger: logger})
			}
			n, err := bc.NewNode(cfg)
			if err != nil {
				return err
			}
			for _, r := range regions {
				name, file, ok := strings.Cut(r, "=")
				if !ok || name == "" || file == "" {
					n.Close()
					return fmt.Errorf("serve: --region %q: want name=file", r)
				}
				data, err := os.ReadFile(file)
				if err != nil {
					n.Close()
					return err
				}
				if err := n.RegisterRegion(name, data); err != nil {
					n.Close()
					return err
				}
				logger.Info("region registered", "name", name, "file", file, "bytes", len(data))
			}
			trusted := fmt.Sprintf("%d trusted keys", len(cfg.Trust))
			if insecure {
				trusted = "INSECURE: runs any code"
			}
			logger.Info("serving", "id", id, "listen", cfg.Listen, "transport", transportKind, "peers", len(cfg.Peers), "trust", trusted)
			return n.Serve(ctx)
		},
	}
	f := cmd.Flags()
	f.Uint32Var(&id, "id", 0, "this node's id (required)")
	f.StringVar(&listen, "listen", "", "address to listen on (default: this node's addr in the cluster file)")
	f.StringVar(&peers, "peers", "", "cluster file with the peers (default $BCSHIP_CLUSTER or ./cluster.toml)")
	f.StringVar(&peers, "cluster", "", "same as --peers")
	f.StringArrayVar(&regions, "region", nil, "register a region: name=file (repeatable)")
	f.BoolVar(&insecure, "insecure", false, "run unsigned and untrusted code")
	f.StringVar(&trust, "trust", "", "directory of trusted *.pub keys")
	f.StringVar(&key, "key", "", "private key to sign code this node cross-compiles for peers")
	f.BoolVar(&busy, "busy-poll", false, "spin on sockets before parking (lowest latency; burns a core while traffic flows)")
	f.StringVar(&congestion, "tcp-congestion", "", "TCP congestion control: reno, cubic, bbr, … or system (the kernel's default); default reno with --busy-poll, else system")
	f.BoolVar(&noLLVM, "no-llvm", false, "never compile bitcode here")
	f.Int64Var(&cacheMiB, "cache-mib", 256, "code cache size in MiB")
	f.Uint8Var(&ttl, "ttl", bc.DefaultTTL, "forwards an invocation started here may make")
	f.DurationVar(&deadline, "deadline", bc.DefaultDeadline, "default per-run kernel deadline")
	f.StringVar(&transportKind, "transport", "tcp", "tcp, shm (shared memory with peers on this host) or rdma (needs --rdma-dev)")
	f.StringVar(&rdmaDev, "rdma-dev", "", "RDMA device for --transport rdma (e.g. rxe0)")
	cmd.MarkFlagRequired("id")
	return cmd
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
