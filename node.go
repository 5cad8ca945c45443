package bcship

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bcship/bcship/bundle"
	"github.com/bcship/bcship/exec"
	"github.com/bcship/bcship/internal/hostrt"
	"github.com/bcship/bcship/transport"
	"github.com/bcship/bcship/transport/rdma"
	"github.com/bcship/bcship/transport/shm"
	"github.com/bcship/bcship/transport/tcp"
	"github.com/bcship/bcship/wire"
)

// Defaults for Config's zero fields.
const (
	DefaultCacheBytes = 256 << 20
	DefaultTTL        = 64
	DefaultDeadline   = 5 * time.Second
	DefaultOutboxSize = 64 << 10
)

// FlagMore is set in the header flags of a RESULT that is not the last
// one of its request: the kernel replied and its chain goes on (or it
// replied more than once). The origin completes a request at the first
// RESULT without it.
const FlagMore uint16 = 1

// Config configures a Node. ID is required; every other zero field takes
// a default.
type Config struct {
	// ID is this node's id, unique in the cluster. Kernels see it as
	// bc_self and address nodes by id.
	ID uint32
	// Listen is the TCP address to accept peers on ("127.0.0.1:0",
	// ":7403"); empty means this node only dials (a client).
	Listen string
	// Advertise is the address announced to peers in HELLO; default the
	// listener's address.
	Advertise string
	// Peers maps the other nodes' ids to their addresses.
	Peers map[uint32]string
	// Trust lists the ed25519 keys whose signed code this node runs.
	Trust []ed25519.PublicKey
	// Insecure runs unsigned and untrusted code too.
	Insecure bool
	// SigningKey signs bundles this node cross-compiles for a peer that
	// needs another triple; without it such bundles go out unsigned.
	SigningKey ed25519.PrivateKey
	// CacheBytes bounds the loaded images in the code cache (LRU by bytes);
	// default 256 MiB.
	CacheBytes int64
	// DefaultTTL is the number of forwards an invocation may make; default
	// 64.
	DefaultTTL uint8
	// Deadline bounds one kernel run when the request carries no deadline;
	// default 5 s.
	Deadline time.Duration
	// OutboxSize is the per-invocation outbox in bytes; default 64 KiB.
	OutboxSize int
	// MaxStacks bounds concurrent kernel runs (exec.Options.MaxStacks).
	MaxStacks int
	// MaxFrame is the largest frame payload accepted; default
	// wire.DefaultMaxFrameSize.
	MaxFrame uint32
	// BusyPoll makes the transport's readers spin before parking.
	BusyPoll bool
	// TCPCongestion is the congestion control algorithm of the node's TCP
	// connections ("reno", "cubic", "bbr", …; transport/tcp
	// Config.Congestion). Empty picks reno for BusyPoll nodes, whose
	// round trips it shortens, and the system's default for others;
	// "system" keeps the system's default.
	TCPCongestion string
	// Heartbeat and DeadAfter tune dead-peer detection (see transport/tcp).
	Heartbeat, DeadAfter time.Duration
	// RDMADevice, when set (e.g. "rxe0"), runs the node on transport/rdma
	// over that device: messages go over RC queue pairs to peers that
	// announce RDMA (TCP to the others), registered regions become MRs,
	// and Get/Put to RDMA peers are one-sided READ/WRITE. Start fails with
	// an error matching rdma.ErrNoRDMA when the device is unusable.
	RDMADevice string
	// RDMAPort is the device port; default 1.
	RDMAPort uint8
	// SharedMemory runs the node on transport/shm: peers on the same host
	// (same kernel, same /dev/shm, same user) exchange messages through
	// rings in shared memory, set up over the TCP connection on first
	// use; the others, and any pair whose setup fails, use TCP. It cannot
	// be combined with RDMADevice.
	SharedMemory bool
	// Toolchain, when set, lets the node compile bundle bitcode for its own
	// triple and cross-compile for peers; a *toolchain.Toolchain is one.
	// Nil: prebuilt objects only, and HELLO announces no LLVM, so origins
	// send this node objects for its triple (cross-compiling them).
	Toolchain Compiler
	// Logger receives node events and kernel bc_log messages; default
	// discards.
	Logger *slog.Logger
}

// Node is one bcship node: it serves registered regions and runs shipped
// kernels next to them, and it is also the origin API (Invoke, Get, …).
// It is safe for concurrent use.
type Node struct {
	cfg    Config
	log    *slog.Logger
	triple string
	nodes  atomic.Uint32 // cluster size as bc_nodes reports it

	rt *hostrt.Runtime
	ex *exec.Executor

	ctx    context.Context
	cancel context.CancelFunc
	runMu  sync.RWMutex // orders goRun's wg.Add before Close's wg.Wait
	wg     sync.WaitGroup

	trMu sync.RWMutex
	// hot is the transport, and the same transport when callers may drive
	// it: set once by setTransport (under trMu), never changed, so the
	// request paths read it without trMu.
	hot   atomic.Pointer[hotPath]
	ep    transport.Endpoint // the same transport: listener and address book
	one   transport.OneSided // the same transport when it has one-sided access, else nil
	peers map[uint32]string  // guarded by trMu

	cache   *codeCache
	regions atomic.Pointer[regionSet]
	regMu   sync.Mutex // serializes region updates
	outbox  sync.Pool  // *[]byte outboxes

	amMu  sync.RWMutex
	ams   map[string]*amHandler
	amOld []*amHandler // replaced handlers, unmapped at Close

	reqID   atomic.Uint64
	pmu     sync.Mutex
	pending pendingCalls         // guarded by pmu
	spare   atomic.Pointer[call] // see newCall

	lastCode atomic.Pointer[codeMemo] // AddCode's last hash (origin.go)

	// The code this node originates and where it has been shipped. Both
	// are read on every invoke, so the invoke path takes no lock: known is
	// copy-on-write, and AddCode's memo stands for a store lookup while
	// storeGen is unchanged. smu serializes the writers.
	smu      sync.Mutex
	store    map[bundle.Digest]*stored // code this node originates
	storeGen atomic.Uint64             // bumped when a hash gets a new stored bundle
	known    atomic.Pointer[knownSet]
	shipMemo atomic.Pointer[knownMemo] // mustShip's last positive answer

	wmu      sync.Mutex
	waiting  map[bundle.Digest][]*job // invocations waiting for their code
	rejected map[bundle.Digest]*rejection

	connectOnce sync.Once
	lastConnect atomic.Int64 // connectPeers' last scan, ns since clockEpoch
	closed      atomic.Bool

	stats counters
}

type counters struct {
	ships, shipBytes, shipsRecv, needCode atomic.Uint64
	invocations, faults, deadlines        atomic.Uint64
	cacheHits, cacheMisses                atomic.Uint64
	running                               atomic.Int64
}

// Stats are a node's counters.
type Stats struct {
	Transport    transport.Stats
	Ships        uint64 // SHIP messages sent
	ShipBytes    uint64 // bundle bytes in them
	ShipsRecv    uint64 // SHIP messages received
	NeedCode     uint64 // NEED_CODE messages sent
	Invocations  uint64 // kernel runs here
	Running      int64  // kernel runs in progress (with their outbox)
	Faults       uint64 // runs that faulted
	Deadlines    uint64 // runs aborted at their deadline
	CacheHits    uint64 // invocations whose code was cached
	CacheMisses  uint64 // invocations that had to wait for code
	CacheBytes   int64  // bytes of loaded images cached
	CacheEntries int
	Evictions    uint64
}

// NewNode prepares a node: it loads the host runtime and the executor. It
// does not touch the network until Start.
func NewNode(cfg Config) (*Node, error) {
	if cfg.CacheBytes <= 0 {
		cfg.CacheBytes = DefaultCacheBytes
	}
	if cfg.DefaultTTL == 0 {
		cfg.DefaultTTL = DefaultTTL
	}
	if cfg.Deadline <= 0 {
		cfg.Deadline = DefaultDeadline
	}
	if cfg.OutboxSize <= 0 {
		cfg.OutboxSize = DefaultOutboxSize
	}
	if cfg.OutboxSize < 256 {
		return nil, fmt.Errorf("%w: OutboxSize %d is below 256 bytes", ErrConfig, cfg.OutboxSize)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if _, ok := cfg.Peers[cfg.ID]; ok {
		peers := make(map[uint32]string, len(cfg.Peers))
		for id, a := range cfg.Peers {
			if id != cfg.ID {
				peers[id] = a
			}
		}
		cfg.Peers = peers
	}
	triple, ok := hostTriple()
	if !ok {
		return nil, fmt.Errorf("%w: no target triple for this machine", ErrConfig)
	}
	n := &Node{
		cfg: cfg, log: cfg.Logger.With("node", cfg.ID), triple: triple,
		peers:   maps.Clone(cfg.Peers),
		ams:     map[string]*amHandler{},
		store:   map[bundle.Digest]*stored{},
		waiting: map[bundle.Digest][]*job{}, rejected: map[bundle.Digest]*rejection{},
	}
	if n.peers == nil {
		n.peers = map[uint32]string{}
	}
	n.known.Store(&knownSet{})
	n.nodes.Store(uint32(len(n.peers) + 1))
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.cache = newCodeCache(cfg.CacheBytes)
	n.regions.Store(&regionSet{byName: map[string][]byte{}})
	rt, err := hostrt.Load()
	if err != nil {
		return nil, err
	}
	n.rt = rt
	ex, err := exec.New(exec.Options{MaxStacks: cfg.MaxStacks, Context: n.ctx, Symbolize: n.symbolize})
	if err != nil {
		rt.Close()
		return nil, err
	}
	n.ex = ex
	return n, nil
}

// ID is the node's id.
func (n *Node) ID() uint32 { return n.cfg.ID }

// Triple is the target triple this node runs code for.
func (n *Node) Triple() string { return n.triple }

// Start brings the network up: it listens (when Config.Listen is set) and
// becomes able to reach its peers. ctx bounds only the start itself.
func (n *Node) Start(ctx context.Context) error {
	if n.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	hello := wire.Hello{Listen: n.cfg.Advertise, Triples: []string{n.triple}}
	// Only servers announce their llc; a client's toolchain is for
	// cross-compiling, which needs no probe up front.
	if tc := n.cfg.Toolchain; tc != nil && n.cfg.Listen != "" {
		if major, err := tc.LLVMVersion(ctx); err == nil && major > 0 {
			hello.LLVM = uint16(major)
			hello.Caps |= wire.CapLLVM
		}
	}
	n.trMu.RLock()
	peers := maps.Clone(n.peers)
	n.trMu.RUnlock()
	tc := tcp.Config{
		Self: n.cfg.ID, Listen: n.cfg.Listen, Peers: peers, Hello: hello, Handler: (*handler)(n),
		MaxFrame: n.cfg.MaxFrame, BusyPoll: n.cfg.BusyPoll, Heartbeat: n.cfg.Heartbeat, DeadAfter: n.cfg.DeadAfter,
		Congestion: n.cfg.TCPCongestion, Logger: n.cfg.Logger.With("node", n.cfg.ID, "layer", "tcp"),
	}
	var t transport.Endpoint
	kind := "tcp"
	switch dev := n.cfg.RDMADevice; {
	case dev != "" && n.cfg.SharedMemory:
		return fmt.Errorf("%w: RDMADevice and SharedMemory are exclusive", ErrConfig)
	case dev != "":
		rt, err := rdma.New(rdma.Config{TCP: tc, Device: dev, Port: n.cfg.RDMAPort})
		if err != nil {
			return err
		}
		t, kind = rt, "rdma "+dev
	case n.cfg.SharedMemory:
		st, err := shm.New(shm.Config{TCP: tc})
		if err != nil {
			return err
		}
		t, kind = st, "shm"
	default:
		tt, err := tcp.New(tc)
		if err != nil {
			return err
		}
		t = tt
	}
	if err := n.setTransport(t); err != nil {
		t.Close()
		return err
	}
	addr := "none (client only)"
	if a := t.Addr(); a != nil {
		addr = a.String() // a net.Addr logs as a struct in JSON
	}
	n.log.Info("node started", "addr", addr, "transport", kind, "triple", n.triple, "peers", len(n.cfg.Peers))
	return nil
}

// setTransport installs t, and hands it the regions registered before
// Start when it has one-sided access (RegisterRegion does that for later
// ones; regMu orders the two so none is missed or registered stale).
func (n *Node) setTransport(t transport.Endpoint) error {
	one, _ := t.(transport.OneSided)
	drv, _ := t.(transport.Driver)
	n.regMu.Lock()
	defer n.regMu.Unlock()
	if one != nil {
		for name, d := range n.regions.Load().byName {
			if err := one.RegisterRegion(name, d); err != nil {
				return fmt.Errorf("region %q: %w", name, err)
			}
		}
	}
	n.trMu.Lock()
	defer n.trMu.Unlock()
	if n.hot.Load() != nil {
		return fmt.Errorf("%w: node already started", ErrConfig)
	}
	n.ep, n.one = t, one
	n.hot.Store(&hotPath{tr: t, drv: drv})
	return nil
}

// Serve starts the node and serves until ctx is done, then closes it.
func (n *Node) Serve(ctx context.Context) error {
	if err := n.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	return n.Close()
}

// Addr is the address the node listens on, or nil.
func (n *Node) Addr() net.Addr {
	n.trMu.RLock()
	defer n.trMu.RUnlock()
	if n.ep == nil {
		return nil
	}
	return n.ep.Addr()
}

// SetPeer records the address of peer id (or changes it), for clusters
// whose addresses are known only once their nodes listen.
func (n *Node) SetPeer(id uint32, addr string) {
	if id == n.cfg.ID {
		return
	}
	n.trMu.Lock()
	defer n.trMu.Unlock()
	n.peers[id] = addr
	n.nodes.Store(uint32(len(n.peers) + 1))
	if n.ep != nil {
		n.ep.SetPeerAddr(id, addr)
	}
}

// peerIDs lists the configured peers.
func (n *Node) peerIDs() []uint32 {
	n.trMu.RLock()
	defer n.trMu.RUnlock()
	return slices.Collect(maps.Keys(n.peers))
}

// StopAccepting makes the node take no new connections, while connected
// peers and running chains carry on: the first step of a drain before
// Close. A transport that cannot (see transport.Drainer) keeps listening.
func (n *Node) StopAccepting() {
	if d, ok := n.Transport().(transport.Drainer); ok {
		d.StopAccepting()
	}
}

// Transport is the transport the node runs on (*tcp.Transport,
// *rdma.Transport or *shm.Transport), for inspection: its peers,
// connections and counters. Sending through it bypasses the node. It is
// nil before Start and after Close.
func (n *Node) Transport() transport.Transport {
	t, _ := n.transport()
	return t
}

func (n *Node) transport() (transport.Transport, error) {
	if n.closed.Load() {
		return nil, ErrClosed
	}
	h := n.hot.Load()
	if h == nil {
		return nil, ErrNotStarted
	}
	return h.tr, nil
}

// hotPath is what every request needs of the transport.
type hotPath struct {
	tr  transport.Transport
	drv transport.Driver
}

// send sends m to peer; h.Type and h.Source are filled in.
func (n *Node) send(peer uint32, h wire.Header, m wire.Message) error {
	t, err := n.transport()
	if err != nil {
		return err
	}
	return t.Send(peer, h, m)
}

// Close stops the node: pending requests fail with ErrClosed, the network
// goes down, running kernels are waited for, and every image is unmapped.
func (n *Node) Close() error {
	n.runMu.Lock()
	first := n.closed.CompareAndSwap(false, true)
	n.runMu.Unlock()
	if !first {
		return nil
	}
	n.cancel()
	n.failAll(func(*call) bool { return true }, ErrClosed)
	n.trMu.Lock() // after a Start that is installing its transport
	h := n.hot.Load()
	n.trMu.Unlock()
	if h != nil {
		h.tr.Close()
	}
	n.wg.Wait()
	n.ex.Close()
	n.cache.closeAll()
	n.amMu.Lock()
	for _, a := range n.ams {
		a.img.Close()
	}
	for _, a := range n.amOld {
		a.img.Close()
	}
	n.ams, n.amOld = map[string]*amHandler{}, nil
	n.amMu.Unlock()
	return n.rt.Close()
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	s := Stats{
		Ships: n.stats.ships.Load(), ShipBytes: n.stats.shipBytes.Load(), ShipsRecv: n.stats.shipsRecv.Load(),
		NeedCode: n.stats.needCode.Load(), Invocations: n.stats.invocations.Load(),
		Running: n.stats.running.Load(), Faults: n.stats.faults.Load(), Deadlines: n.stats.deadlines.Load(),
		CacheHits: n.stats.cacheHits.Load(), CacheMisses: n.stats.cacheMisses.Load(),
	}
	s.CacheBytes, s.CacheEntries, s.Evictions = n.cache.stats()
	if t, err := n.transport(); err == nil {
		s.Transport = t.Stats()
	}
	return s
}

// PeerInfo describes a peer: its HELLO and whether it is connected.
type PeerInfo = transport.PeerInfo

// Peers lists the peers the node knows.
func (n *Node) Peers() []PeerInfo {
	t, err := n.transport()
	if err != nil {
		return nil
	}
	return t.Peers()
}

// symbolize names a PC in a cached image or the runtime, for faults.
func (n *Node) symbolize(pc uintptr) (string, uintptr, bool) {
	if name, off, ok := n.cache.symbolAt(pc); ok {
		return name, off, true
	}
	n.amMu.RLock()
	for _, a := range n.ams {
		if a.img.Contains(pc) {
			n.amMu.RUnlock()
			return a.img.SymbolAt(pc)
		}
	}
	n.amMu.RUnlock()
	if img := n.rt.Image(); img.Contains(pc) {
		return img.SymbolAt(pc)
	}
	return "", 0, false
}

// goRun runs f on a goroutine that Close waits for; after Close it does
// nothing.
func (n *Node) goRun(f func()) {
	n.runMu.RLock()
	defer n.runMu.RUnlock()
	if n.closed.Load() {
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
}
