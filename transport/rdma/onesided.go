package rdma

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"time"

	"github.com/bcship/bcship/transport"
	"github.com/bcship/bcship/verbs"
	"github.com/bcship/bcship/wire"
)

// retireAfter is how long a replaced region's MR stays registered: peers
// may still READ or WRITE it with the rkey they had until our new table
// reaches them (an access to a deregistered MR kills their QP).
const retireAfter = time.Second

// RegisterRegion registers data as an RDMA MR under name, readable and
// writable by peers (remote GET and PUT without this node's CPU), and
// advertises it to connected peers; new peers get it at setup. Registering
// a name again replaces the region; nil data removes it. data must stay
// untouched by the Go runtime's reuse: keep it referenced.
func (t *Transport) RegisterRegion(name string, data []byte) error {
	if name == "" || len(name) > wire.MaxString {
		return fmt.Errorf("rdma: region name of %d bytes", len(name))
	}
	var mr *verbs.MR
	if data != nil {
		if len(data) == 0 {
			return fmt.Errorf("rdma: region %q is empty", name)
		}
		var err error
		mr, err = t.pd.RegMR(data, verbs.AccessLocalWrite|verbs.AccessRemoteRead|verbs.AccessRemoteWrite)
		if err != nil {
			return err
		}
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		if mr != nil {
			mr.Close()
		}
		return transport.ErrClosed
	}
	old := t.regions[name]
	if old != nil {
		t.retired[old] = struct{}{}
	}
	if mr == nil {
		delete(t.regions, name)
	} else {
		t.regions[name] = &localRegion{name: name, buf: data, mr: mr}
	}
	var peers []uint32
	for id, ps := range t.peers {
		if ps.Conn != nil {
			peers = append(peers, id)
		}
	}
	t.mu.Unlock()
	if old != nil {
		time.AfterFunc(retireAfter, func() {
			t.mu.Lock()
			defer t.mu.Unlock()
			if !t.closed { // else closeDevice has closed it
				old.mr.Close()
				delete(t.retired, old)
			}
		})
	}
	m := &ctrlMsg{Kind: ctrlRegions, EP: endpoint{Regions: t.regionTable()}}
	for _, p := range peers {
		t.sendCtrl(p, m)
	}
	return nil
}

// regionTable is what peers are told about our regions.
func (t *Transport) regionTable() []RemoteRegion {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]RemoteRegion, 0, len(t.regions))
	for _, r := range t.regions {
		out = append(out, RemoteRegion{Name: r.name, Addr: r.mr.Addr(0), Size: uint64(len(r.buf)), RKey: r.mr.RKey})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// RemoteRegions lists the regions peer advertised (set up the connection
// first with Connect).
func (t *Transport) RemoteRegions(peer uint32) []RemoteRegion {
	t.mu.Lock()
	ps := t.peers[peer]
	var c *conn
	if ps != nil {
		c = ps.Conn
	}
	t.mu.Unlock()
	if c == nil {
		return nil
	}
	rs := c.info().RemoteRegions
	sort.Slice(rs, func(i, j int) bool { return rs[i].Name < rs[j].Name })
	return rs
}

// Read fills dst from offset off of peer's region with RDMA READ: a
// one-sided GET that runs no code at the peer. The access is checked
// against the advertised size first (RegionError).
func (t *Transport) Read(ctx context.Context, peer uint32, region string, off uint64, dst []byte) error {
	return t.oneSided(ctx, peer, verbs.OpRDMARead, region, off, dst)
}

// Write copies src to offset off of peer's region with RDMA WRITE: a
// one-sided PUT. It returns once the peer's NIC acknowledged the data.
func (t *Transport) Write(ctx context.Context, peer uint32, region string, off uint64, src []byte) error {
	return t.oneSided(ctx, peer, verbs.OpRDMAWrite, region, off, src)
}

func (t *Transport) oneSided(ctx context.Context, peer uint32, opc verbs.Opcode, region string, off uint64, buf []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c, err := t.connFor(peer)
	if err != nil {
		return err
	}
	if c == nil {
		return fmt.Errorf("%w: peer %d is reached over TCP", ErrNoRDMA, peer)
	}
	c.mu.Lock()
	rr, ok := c.regions[region]
	c.mu.Unlock()
	n := uint64(len(buf))
	if !ok {
		return &RegionError{Peer: peer, Region: region, Offset: off, Length: n, Err: ErrNoRegion}
	}
	if off > rr.Size || n > rr.Size-off {
		return &RegionError{Peer: peer, Region: region, Offset: off, Length: n, Size: rr.Size, Err: ErrOutOfRange}
	}
	for done := 0; done < len(buf); {
		k := min(len(buf)-done, t.cfg.ScratchSize)
		if err := c.oneSided(ctx, opc, rr.Addr+off+uint64(done), rr.RKey, buf[done:done+k]); err != nil {
			return err
		}
		done += k
	}
	return nil
}

// oneSided runs one READ or WRITE of at most ScratchSize bytes through a
// registered scratch slot.
func (c *conn) oneSided(ctx context.Context, opc verbs.Opcode, raddr uint64, rkey uint32, buf []byte) error {
	var slot int
	select {
	case slot = <-c.scratch:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.deadCh:
		return c.downErr()
	}
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		c.scratch <- slot
		return c.downErr()
	}
	c.users.Add(1)
	c.opSeq++
	id := wrID(kindOp, c.id, c.opSeq)
	o := &op{done: make(chan error, 1), slot: slot}
	c.ops[id] = o
	off := c.scratchOff(slot)
	s := c.mem[off : off+len(buf)]
	if opc == verbs.OpRDMAWrite {
		copy(s, buf)
	}
	sge, _ := c.mr.SGE(off, len(buf))
	err := c.qp.PostSend([]verbs.SendWR{{ID: id, Op: opc, Flags: verbs.SendSignaled, SGEs: []verbs.SGE{sge},
		RemoteAddr: raddr, RKey: rkey}})
	if err != nil {
		delete(c.ops, id)
		c.mu.Unlock()
		c.users.Done()
		c.scratch <- slot
		return err
	}
	c.mu.Unlock()
	finish := func(err error) error {
		if err == nil && opc == verbs.OpRDMARead {
			copy(buf, s)
		}
		c.users.Done()
		c.scratch <- slot
		return err
	}
	// Watchdog: rxe does not always report retry-exceeded (a READ to a
	// peer QP in ERR hangs for good), so a silent QP counts as failed.
	start := time.Now()
	deadline := start.Add(c.t.cfg.OpTimeout)
	abandon := func() error {
		c.mu.Lock()
		if _, pending := c.ops[id]; pending {
			o.abandoned = true
			c.mu.Unlock()
			c.users.Done()
			return ctx.Err()
		}
		c.mu.Unlock()
		return finish(<-o.done)
	}
	// The completion is due within a round trip: poll for it here for a
	// while (SpinFor, at least a millisecond), then sleep on it.
	spinUntil := start.Add(max(c.t.cfg.SpinFor, time.Millisecond))
	for spins := 1; ; spins++ {
		select {
		case err := <-o.done:
			return finish(err)
		case <-ctx.Done():
			return abandon()
		default:
		}
		if spins&63 == 0 && time.Now().After(spinUntil) {
			break
		}
		if !c.p.drive() {
			runtime.Gosched()
		}
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case err := <-o.done:
		return finish(err)
	case <-timer.C:
		c.fail(fmt.Errorf("rdma: no completion for a one-sided access within %v", c.t.cfg.OpTimeout), true)
		return finish(<-o.done)
	case <-ctx.Done():
		return abandon()
	}
}

// completeOp hands a one-sided completion to its caller, or frees the
// slot of a caller that left.
func (c *conn) completeOp(id uint64, err error) {
	c.mu.Lock()
	o := c.ops[id]
	delete(c.ops, id)
	c.mu.Unlock()
	switch {
	case o == nil:
	case o.abandoned:
		c.scratch <- o.slot
	default:
		o.done <- err
	}
}
