package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"time"

	bc "github.com/bcship/bcship"
	"github.com/bcship/bcship/bundle"
)

// state is what /healthz reports.
type state int32

const (
	stateStarting state = iota
	stateReady
	stateDraining
)

func (s state) String() string {
	switch s {
	case stateReady:
		return "ready"
	case stateDraining:
		return "draining"
	}
	return "starting"
}

// daemon is one running bcshipd: the node and its health state.
type daemon struct {
	node  *bc.Node
	log   *slog.Logger
	state atomic.Int32
}

func (d *daemon) setState(s state) { d.state.Store(int32(s)) }
func (d *daemon) getState() state  { return state(d.state.Load()) }

// run serves until ctx is done, then drains and closes the node. start is
// when the process began, for the start-up time in the "ready" log.
func run(ctx context.Context, o *options, log *slog.Logger, start time.Time) error {
	cfg := bc.Config{
		ID: o.id, Listen: o.listen, Advertise: o.advertise, Peers: o.peers, Insecure: o.insecure,
		CacheBytes: o.cacheBytes, Deadline: o.deadline, MaxStacks: o.maxStacks, BusyPoll: o.busyPoll, TCPCongestion: o.congestion, RDMADevice: o.rdmaDev, SharedMemory: o.shm,
		Logger: log,
		// Toolchain stays nil: bcshipd never compiles, so HELLO announces
		// no LLVM and origins ship objects for this node's triple.
	}
	if o.trustDir != "" {
		keys, err := bundle.LoadTrustDir(o.trustDir)
		if err != nil {
			return &configError{Setting: "--trust/BCSHIP_TRUST", Err: err}
		}
		cfg.Trust = keys
	}
	if !o.insecure && len(cfg.Trust) == 0 {
		return badSetting("--trust/BCSHIP_TRUST", "%s holds no *.pub keys; pass --insecure to run unsigned code", o.trustDir)
	}
	n, err := bc.NewNode(cfg)
	if err != nil {
		if errors.Is(err, bc.ErrConfig) {
			return &configError{Setting: "node", Err: err}
		}
		return err
	}
	d := &daemon{node: n, log: log}
	if err := d.registerRegions(o.regions); err != nil {
		n.Close()
		return err
	}
	var hs *healthServer
	if o.httpAddr != "" {
		// Up before the node, so probes see "starting" rather than
		// connection refused.
		if hs, err = startHealth(o.httpAddr, d); err != nil {
			n.Close()
			return &configError{Setting: "--http/BCSHIP_HTTP", Err: err}
		}
		defer hs.Close()
	}
	if err := n.Start(ctx); err != nil {
		n.Close()
		var oe *net.OpError
		if errors.As(err, &oe) {
			return &configError{Setting: "--listen/BCSHIP_LISTEN", Err: err}
		}
		return err
	}
	d.setState(stateReady)
	trust := fmt.Sprintf("%d keys", len(cfg.Trust))
	if o.insecure {
		trust = "INSECURE: runs any code"
	}
	attrs := []any{"id", o.id, "addr", n.Addr().String(), "triple", n.Triple(), "llvm", false,
		"peers", len(o.peers), "trust", trust, "startup_ms", float64(time.Since(start).Microseconds()) / 1000}
	if hs != nil {
		attrs = append(attrs, "http", hs.Addr().String())
	}
	log.Info("ready", attrs...)
	if err := sdNotify("READY=1"); err != nil {
		log.Warn("systemd notify failed", "err", err)
	}

	<-ctx.Done()
	return d.shutdown(o.drainTimeout)
}

// registerRegions reads each region file into memory and registers it.
func (d *daemon) registerRegions(rs []region) error {
	for _, r := range rs {
		data, err := os.ReadFile(r.file)
		if err != nil {
			return &configError{Setting: "--region " + r.name, Err: err}
		}
		if err := d.node.RegisterRegion(r.name, data); err != nil {
			return &configError{Setting: "--region " + r.name, Err: err}
		}
		d.log.Info("region registered", "name", r.name, "file", r.file, "bytes", len(data))
	}
	return nil
}

// shutdown drains: /healthz reports draining, the node takes no new
// connections, kernels already running
// (and the forwards and replies they produce) get up to timeout to
// finish, then the node closes, aborting whatever still runs.
func (d *daemon) shutdown(timeout time.Duration) error {
	d.setState(stateDraining)
	d.node.StopAccepting() // no new peers; connected ones finish their chains
	_ = sdNotify("STOPPING=1")
	t0 := time.Now()
	d.log.Info("draining", "running", d.node.Stats().Running, "timeout", timeout.String())
	// Idle must hold for a few polls: a run that just finished may have
	// forwarded a chain that comes straight back here.
	const poll, quiet = 10 * time.Millisecond, 3
	for idle := 0; idle < quiet; {
		if d.node.Stats().Running == 0 {
			idle++
		} else {
			idle = 0
		}
		if time.Since(t0) >= timeout {
			d.log.Warn("drain timeout: aborting running kernels", "running", d.node.Stats().Running)
			break
		}
		time.Sleep(poll)
	}
	s := d.node.Stats()
	err := d.node.Close()
	d.log.Info("stopped", "drain_ms", time.Since(t0).Milliseconds(), "invocations", s.Invocations,
		"faults", s.Faults, "deadlines", s.Deadlines, "cached", s.CacheEntries)
	return err
}

// sdNotify sends state to systemd when it started us as Type=notify
// ($NOTIFY_SOCKET); without the variable it does nothing.
func sdNotify(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if path[0] == '@' {
		path = "\x00" + path[1:] // abstract socket
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte(state))
	return err
}
