package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	bc "github.com/bcship/bcship"
	"github.com/bcship/bcship/internal/clusterfile"
)

// errHelp is returned for -h/--help after the usage was printed.
var errHelp = flag.ErrHelp

// configError is a bad setting: a flag, an environment variable or a
// file they name. main exits 2 on it.
type configError struct {
	Setting string // flag or variable name, e.g. "--id/BCSHIP_ID"
	Err     error
}

func (e *configError) Error() string { return e.Setting + ": " + e.Err.Error() }
func (e *configError) Unwrap() error { return e.Err }

func badSetting(setting string, format string, args ...any) *configError {
	return &configError{Setting: setting, Err: fmt.Errorf(format, args...)}
}

// region is a --region NAME=FILE.
type region struct{ name, file string }

// options is bcshipd's configuration after flags and environment.
type options struct {
	id           uint32
	listen       string
	advertise    string
	peers        map[uint32]string
	clusterFile  string // where peers came from, when a file
	trustDir     string
	insecure     bool
	regions      []region
	httpAddr     string
	logLevel     slog.Level
	cacheBytes   int64
	deadline     time.Duration
	maxStacks    int
	busyPoll     bool
	congestion   string // TCP congestion control ("" = transport/tcp's choice)
	rdmaDev      string // run on transport/rdma over this device ("" = TCP)
	shm          bool   // run on transport/shm
	drainTimeout time.Duration
}

// regionFlag collects repeated --region flags.
type regionFlag struct{ rs *[]region }

func (f regionFlag) String() string { return "" }
func (f regionFlag) Set(s string) error {
	name, file, ok := strings.Cut(s, "=")
	if !ok || name == "" || file == "" {
		return fmt.Errorf("want name=file, got %q", s)
	}
	*f.rs = append(*f.rs, region{name, file})
	return nil
}

// parseOptions reads flags from args, falling back to the BCSHIP_*
// environment variables (through getenv) for flags not given.
func parseOptions(args []string, getenv func(string) string, usage io.Writer) (*options, error) {
	o := &options{}
	var (
		id, peers, level string
		cacheMiB         int64
	)
	fs := flag.NewFlagSet("bcshipd", flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.StringVar(&id, "id", "", "this node's id (required; $BCSHIP_ID)")
	fs.StringVar(&o.listen, "listen", "", "TCP address to accept peers on ($BCSHIP_LISTEN; default this node's addr in the cluster file)")
	fs.StringVar(&o.advertise, "advertise", "", "address announced to peers ($BCSHIP_ADVERTISE; default the listener's)")
	fs.StringVar(&peers, "peers", "", `peers: "1=host:port,2=host:port" or a cluster.toml path ($BCSHIP_PEERS)`)
	fs.StringVar(&o.trustDir, "trust", "", "directory of trusted *.pub keys ($BCSHIP_TRUST; default the cluster file's)")
	fs.BoolVar(&o.insecure, "insecure", false, "run unsigned and untrusted code (flag only, never from the environment)")
	fs.Var(regionFlag{&o.regions}, "region", "register a region: name=file (repeatable)")
	fs.StringVar(&o.httpAddr, "http", "", "serve GET /healthz and /metrics on this address ($BCSHIP_HTTP; default off)")
	fs.StringVar(&level, "log-level", "", "debug, info, warn or error ($BCSHIP_LOG_LEVEL; default info)")
	fs.Int64Var(&cacheMiB, "cache-mib", bc.DefaultCacheBytes>>20, "code cache size in MiB")
	fs.DurationVar(&o.deadline, "deadline", bc.DefaultDeadline, "default per-run kernel deadline")
	fs.IntVar(&o.maxStacks, "max-stacks", 0, "concurrent kernel runs (default: the executor's)")
	fs.BoolVar(&o.busyPoll, "busy-poll", false, "spin on sockets before parking (lowest latency; burns a core while traffic flows)")
	fs.StringVar(&o.congestion, "tcp-congestion", "", "TCP congestion control: reno, cubic, bbr, … or system, the kernel's default ($BCSHIP_TCP_CONGESTION; default reno with --busy-poll, else system)")
	fs.StringVar(&o.rdmaDev, "rdma-dev", "", "run on RDMA over this device, e.g. mlx5_0 or rxe0 ($BCSHIP_RDMA_DEV; default TCP only); peers without RDMA are still reached over TCP")
	fs.BoolVar(&o.shm, "shm", false, "exchange messages through shared memory with peers on this host ($BCSHIP_SHM=1); others are reached over TCP")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", 10*time.Second, "on SIGTERM, how long running kernels may take to finish")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, badSetting("arguments", "unexpected %q (bcshipd takes flags only)", fs.Args())
	}
	env := func(v *string, name string) {
		if *v == "" {
			*v = strings.TrimSpace(getenv(name))
		}
	}
	env(&id, "BCSHIP_ID")
	env(&o.listen, "BCSHIP_LISTEN")
	env(&o.advertise, "BCSHIP_ADVERTISE")
	env(&peers, "BCSHIP_PEERS")
	env(&o.trustDir, "BCSHIP_TRUST")
	env(&o.httpAddr, "BCSHIP_HTTP")
	env(&level, "BCSHIP_LOG_LEVEL")
	env(&o.rdmaDev, "BCSHIP_RDMA_DEV")
	env(&o.congestion, "BCSHIP_TCP_CONGESTION")
	if !o.shm {
		switch v := strings.TrimSpace(getenv("BCSHIP_SHM")); v {
		case "", "0", "false":
		case "1", "true":
			o.shm = true
		default:
			return nil, badSetting("BCSHIP_SHM", "want 1 or 0, got %q", v)
		}
	}
	if o.shm && o.rdmaDev != "" {
		return nil, badSetting("--shm", "cannot be combined with --rdma-dev")
	}

	if id == "" {
		return nil, badSetting("--id/BCSHIP_ID", "required")
	}
	n, err := strconv.ParseUint(id, 10, 32)
	if err != nil {
		return nil, badSetting("--id/BCSHIP_ID", "%q is not a node id (0-4294967295)", id)
	}
	o.id = uint32(n)
	if level != "" {
		if err := o.logLevel.UnmarshalText([]byte(level)); err != nil {
			return nil, badSetting("--log-level/BCSHIP_LOG_LEVEL", "%v", err)
		}
	}
	if cacheMiB <= 0 {
		return nil, badSetting("--cache-mib", "must be positive, got %d", cacheMiB)
	}
	o.cacheBytes = cacheMiB << 20
	if peers != "" {
		if err := o.setPeers(peers); err != nil {
			return nil, err
		}
	}
	if o.listen == "" {
		return nil, badSetting("--listen/BCSHIP_LISTEN", "required (node %d has no address in the peers)", o.id)
	}
	if !o.insecure && o.trustDir == "" {
		return nil, badSetting("--trust/BCSHIP_TRUST", "no trusted keys: name a directory of *.pub files, or pass --insecure")
	}
	return o, nil
}

// setPeers applies a --peers/BCSHIP_PEERS value: an inline list when it
// contains "=", else a cluster file, which also supplies this node's
// listen address and the trust directory when they were not set.
func (o *options) setPeers(spec string) error {
	const setting = "--peers/BCSHIP_PEERS"
	if strings.Contains(spec, "=") {
		m, err := parsePeerList(spec)
		if err != nil {
			return &configError{Setting: setting, Err: err}
		}
		o.peers = m
		if o.listen == "" {
			o.listen = m[o.id]
		}
		return nil
	}
	cf, err := clusterfile.Load(spec)
	if err != nil {
		return &configError{Setting: setting, Err: err}
	}
	o.peers, o.clusterFile = cf.Peers(), cf.Path
	if n, ok := cf.Node(o.id); ok && o.listen == "" {
		o.listen = n.Addr
	}
	if o.trustDir == "" {
		o.trustDir = cf.Trust
	}
	return nil
}

// errPeerList reports a malformed inline peer list.
var errPeerList = errors.New(`want "id=host:port[,id=host:port...]"`)

// parsePeerList parses "1=10.0.0.1:7401, 2=10.0.0.2:7402".
func parsePeerList(s string) (map[uint32]string, error) {
	m := map[uint32]string{}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k, addr, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("%q: %w", item, errPeerList)
		}
		id, err := strconv.ParseUint(strings.TrimSpace(k), 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%q: bad node id: %w", item, errPeerList)
		}
		addr = strings.TrimSpace(addr)
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("%q: %v: %w", item, err, errPeerList)
		}
		if _, dup := m[uint32(id)]; dup {
			return nil, fmt.Errorf("node %d listed twice: %w", id, errPeerList)
		}
		m[uint32(id)] = addr
	}
	if len(m) == 0 {
		return nil, errPeerList
	}
	return m, nil
}

// newLogger logs JSON lines to w.
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}
