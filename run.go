package bcship

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/bcship/bcship/bundle"
	"github.com/bcship/bcship/exec"
	"github.com/bcship/bcship/internal/hostrt"
	"github.com/bcship/bcship/wire"
)

// job is one kernel run to do on this node, with the chain state it
// carries: who to answer (origin, req), how far it may still go (ttl,
// expires) and how far it came (hops).
type job struct {
	hash    bundle.Digest
	am      string // AM handler name; "" for shipped code
	entry   string // "" for an AM: the handler's entry
	arg     []byte
	origin  uint32
	req     uint64
	ttl     uint8
	hops    uint8
	expires time.Time // end of the chain's deadline; zero: none
	from    uint32    // node that sent it
}

// jobFromInvoke is the job of an INVOKE or FORWARD. Its deadline, relative
// on the wire, is left to dispatch, which reads the clock anyway.
//
// Jobs are values: a job run inline lives on the read loop's stack, and
// whatever keeps one past execute (a goroutine, the code wait list, a GET
// in flight) keeps a copy. The argument of a job from the wire aliases the
// message, which is the transport's only until the handler returns
// (transport.Handler): a copy that outlives it clones arg too.
func jobFromInvoke(from uint32, m *wire.Invoke) job {
	return job{hash: m.Hash, entry: m.Entry, arg: m.Arg, origin: m.Origin, req: m.OriginRequest,
		ttl: m.TTL, hops: m.Hops, from: from}
}

// setDeadline sets j's chain deadline from its wire form: ms milliseconds
// after now, 0 for none.
func (j *job) setDeadline(now time.Time, ms uint32) {
	if ms > 0 {
		j.expires = now.Add(time.Duration(ms) * time.Millisecond)
	}
}

// fillInvoke makes m the INVOKE message for j, with the deadline left at
// now.
func (j *job) fillInvoke(m *wire.Invoke, now time.Time) {
	ms, _ := deadlineMS(j.expires, now)
	*m = wire.Invoke{Hash: j.hash, Origin: j.origin, OriginRequest: j.req, TTL: j.ttl, Hops: j.hops,
		Deadline: ms, Entry: j.entry, Arg: j.arg}
}

// clockEpoch anchors clock.
var clockEpoch = time.Now()

// clock is time.Now for the hot paths: its monotonic reading, which is
// all that deadlines and run times use, costs one clock read where time.Now
// costs two (wall and monotonic). That matters where a clock read is a
// system call (a VM whose clocksource is not the TSC). The wall reading is
// clockEpoch's advanced by the monotonic clock: do not show it.
func clock() time.Time { return clockEpoch.Add(time.Since(clockEpoch)) }

// code is loaded code to run entries of: a cached image or an AM handler.
type code interface {
	lookup(entry string) (*entryRec, error)
}

// execute runs j and carries out what the kernel asked for. It never
// returns an error: failures go to the origin as ERROR. t0 is the clock
// (clock) at the start, or zero to read it here.
func (n *Node) execute(j *job, t0 time.Time) {
	if j.am != "" {
		h := n.amHandler(j.am)
		if h == nil {
			n.fail(j, wire.CodeNoHandler, fmt.Sprintf("no AM handler %q", j.am))
			return
		}
		entry := j.entry
		if entry == "" {
			entry = h.entry
		}
		n.runCode(j, t0, h, entry)
		return
	}
	e := n.cache.acquire(j.hash)
	if e == nil {
		n.stats.cacheMisses.Add(1)
		n.park(j)
		return
	}
	defer n.cache.release(e)
	n.stats.cacheHits.Add(1)
	n.runCode(j, t0, e, j.entry)
}

func (n *Node) amHandler(name string) *amHandler {
	n.amMu.RLock()
	defer n.amMu.RUnlock()
	return n.ams[name]
}

// runCode runs entry of c for j (execute, or dispatch running it inline).
func (n *Node) runCode(j *job, t0 time.Time, c code, entry string) {
	r, err := c.lookup(entry)
	if err != nil {
		n.fail(j, wire.CodeNoEntry, fmt.Sprintf("entry %q: %v", entry, err))
		return
	}
	n.runEntry(j, t0, r, entry)
}

// runEntry runs entry, resolved to r, for j. t0 is as for execute.
func (n *Node) runEntry(j *job, t0 time.Time, r *entryRec, entry string) {
	n.stats.invocations.Add(1)
	n.stats.running.Add(1)
	defer n.stats.running.Add(-1) // after the outbox is carried out
	// One clock read on each side of the run: the deadline, the run time
	// and the forwards' deadlines all come from these two.
	if t0.IsZero() {
		t0 = clock()
	}
	status, acts, st, err := n.run(t0, n.runDeadline(j, t0), r.fn, j.arg)
	t1 := clock()
	r.speed.record(t1.Sub(t0), st.ctx.OutboxLen, err == nil)
	defer n.putState(st)
	if err != nil {
		var f *exec.Fault
		switch {
		case errors.As(err, &f):
			n.stats.faults.Add(1)
			n.log.Warn("kernel fault", "entry", entry, "code", j.hash.String()[:12], "err", err)
		case errors.Is(err, exec.ErrDeadline):
			n.stats.deadlines.Add(1)
			n.log.Warn("kernel deadline", "entry", entry, "code", j.hash.String()[:12], "err", err)
		}
		n.fail(j, codeOf(err), fmt.Sprintf("%s: %v", entry, err))
		return
	}
	n.drain(j, entry, status, acts, t1)
}

func (n *Node) putState(st *invState) {
	st.ctx = hostrt.Ctx{}
	clear(st.acts)
	st.acts = st.acts[:0]
	n.outbox.Put(st)
}

// runDeadline bounds one kernel run starting at t0: the chain's deadline
// when the request has one, else Config.Deadline. Close aborts it too (the
// executor watches the node's context).
func (n *Node) runDeadline(j *job, t0 time.Time) time.Time {
	if !j.expires.IsZero() {
		return j.expires
	}
	return t0.Add(n.cfg.Deadline)
}

// drain carries out the outbox after a kernel returned at now. Replies go
// to the origin; a forward, invoke or get continues the chain. A run that
// neither continues nor replies still ends the chain with a RESULT carrying
// its status, so the origin never waits for nothing.
func (n *Node) drain(j *job, entry string, status int64, acts []hostrt.Action, now time.Time) {
	cont, replies := false, 0
	for _, a := range acts {
		switch a.Op {
		case hostrt.OpLog:
			n.log.Info("kernel log", "entry", entry, "origin", j.origin, "msg", string(a.A))
		case hostrt.OpReply:
			replies++
		case hostrt.OpForward, hostrt.OpInvoke, hostrt.OpGet:
			cont = true
		}
	}
	if replies == 0 && !cont {
		n.sendResult(j, status, nil, true)
	}
	// Payloads alias the outbox, which outlives this call: whatever sends
	// them encodes them before it returns, and the rest copies them.
	for _, a := range acts {
		switch a.Op {
		case hostrt.OpReply:
			replies--
			n.sendResult(j, status, a.A, !cont && replies == 0)
		}
	}
	for _, a := range acts {
		switch a.Op {
		case hostrt.OpForward:
			n.forward(j, a.Node, entry, a.A, false, now)
		case hostrt.OpInvoke:
			n.forward(j, a.Node, string(a.A), a.B, true, now)
		case hostrt.OpPut:
			n.kernelPut(j, a.Node, string(a.A), a.Off, a.B)
		case hostrt.OpGet:
			n.kernelGet(j, a.Node, string(a.A), a.Off, a.N, string(a.B), now)
		}
	}
}

// next is j moved one step along its chain at now, or an error code when
// the chain may not go on.
func (n *Node) next(j *job, entry string, arg []byte, now time.Time) (job, wire.ErrorCode, string) {
	if j.ttl == 0 {
		return job{}, wire.CodeTTLExhausted, fmt.Sprintf("TTL exhausted after %d hops", j.hops)
	}
	if !j.expires.IsZero() && now.After(j.expires) {
		return job{}, wire.CodeDeadline, fmt.Sprintf("chain deadline passed after %d hops", j.hops)
	}
	nj := *j
	nj.entry, nj.arg, nj.ttl, nj.from = entry, arg, j.ttl-1, n.cfg.ID
	if nj.hops < 255 {
		nj.hops++
	}
	return nj, wire.CodeOK, ""
}

// forward re-runs this code (entry) on node with arg, keeping the origin:
// bc_forward, or bc_invoke with another entry. For active messages, which
// name handlers rather than entries, a forward runs the same handler there
// and an invoke the handler named by entry.
func (n *Node) forward(j *job, node uint32, entry string, arg []byte, invoke bool, now time.Time) {
	am := j.am
	if am != "" {
		if invoke {
			am = entry
		}
		entry = ""
	}
	nj, code, text := n.next(j, entry, arg, now)
	if code != wire.CodeOK {
		n.fail(j, code, text)
		return
	}
	nj.am = am
	if node == n.cfg.ID {
		hj := nj
		hj.arg = bytes.Clone(arg)
		n.goRun(func() { n.execute(&hj, time.Time{}) })
		return
	}
	var err error
	h := wire.Header{RequestID: nj.req}
	if am != "" {
		m := amMsgs.get()
		*m = wire.AM{Handler: am, Origin: nj.origin, OriginRequest: nj.req, TTL: nj.ttl, Arg: nj.arg}
		err = n.send(node, h, m)
		amMsgs.put(m)
	} else {
		m := forwardMsgs.get()
		nj.fillInvoke((*wire.Invoke)(m), now)
		err = n.send(node, h, m)
		forwardMsgs.put(m)
	}
	if err != nil {
		n.fail(j, codeOf(err), fmt.Sprintf("forwarding to node %d: %v", node, err))
	}
}

// Messages sent on the hot paths are pooled: a transport encodes m before
// Send returns (transport.Transport), so m is free again once sent.
var (
	invokeMsgs  msgPool[wire.Invoke]
	forwardMsgs msgPool[wire.Forward]
	amMsgs      msgPool[wire.AM]
	resultMsgs  msgPool[wire.Result]
)

type msgPool[M any] struct{ p sync.Pool }

func (p *msgPool[M]) get() *M {
	if m, ok := p.p.Get().(*M); ok {
		return m
	}
	return new(M)
}

// put clears m, so the pool holds no payload alive, and returns it.
func (p *msgPool[M]) put(m *M) {
	var zero M
	*m = zero
	p.p.Put(m)
}

// kernelPut carries out bc_put: fire and forget; failures are logged.
func (n *Node) kernelPut(j *job, node uint32, region string, off uint64, data []byte) {
	if node == n.cfg.ID {
		d, code, text := n.regions.Load().slice(region, off, uint64(len(data)))
		if code != wire.CodeOK {
			n.log.Warn("kernel put", "err", text)
			return
		}
		copy(d, data)
		return
	}
	c := n.newCall(node, false, clock())
	c.cb = func(c *call) {
		if c.err != nil {
			n.log.Warn("kernel put failed", "node", node, "region", region, "err", c.err)
		}
	}
	if n.register(c) != nil {
		return
	}
	if err := n.send(node, wire.Header{RequestID: c.id}, &wire.Put{Region: region, Offset: off, Data: data}); err != nil {
		n.finish(c.id, nil, nil, err)
	}
}

// kernelGet carries out bc_get: fetch, then run then of this code here
// with the bytes as argument.
func (n *Node) kernelGet(j *job, node uint32, region string, off, length uint64, then string, now time.Time) {
	if length > math.MaxUint32 {
		n.fail(j, wire.CodeTooLarge, fmt.Sprintf("bc_get of %d bytes", length))
		return
	}
	jc := *j     // j is the caller's, maybe on its stack
	jc.arg = nil // the transport's (transport.Handler), and the continuation has its own
	cont := func(data []byte, now time.Time) {
		nj, code, text := n.next(&jc, then, data, now)
		if code != wire.CodeOK {
			n.fail(&jc, code, text)
			return
		}
		nj.hops = jc.hops // a fetch does not move the chain
		n.execute(&nj, now)
	}
	if node == n.cfg.ID {
		d, code, text := n.regions.Load().slice(region, off, length)
		if code != wire.CodeOK {
			n.fail(j, code, text)
			return
		}
		data := bytes.Clone(d)
		n.goRun(func() { cont(data, clock()) })
		return
	}
	c := n.newCall(node, false, clock())
	c.cb = func(c *call) {
		if c.err != nil {
			n.fail(&jc, codeOf(c.err), fmt.Sprintf("bc_get from node %d: %v", node, c.err))
			return
		}
		n.goRun(func() { cont(c.data, clock()) })
	}
	if n.register(c) != nil {
		return
	}
	if err := n.send(node, wire.Header{RequestID: c.id}, &wire.Get{Region: region, Offset: off, Length: uint32(length)}); err != nil {
		n.finish(c.id, nil, nil, err)
	}
}

// sendResult sends one RESULT of j to its origin.
func (n *Node) sendResult(j *job, status int64, reply []byte, final bool) {
	if j.origin == n.cfg.ID {
		m := &wire.Result{OriginRequest: j.req, Status: status, Hops: j.hops, Reply: reply} // onResult copies it
		var flags uint16
		if !final {
			flags = FlagMore
		}
		n.onResult(n.cfg.ID, wire.Header{Flags: flags}, m)
		return
	}
	h := wire.Header{RequestID: j.req}
	if !final {
		h.Flags = FlagMore
	}
	m := resultMsgs.get()
	*m = wire.Result{OriginRequest: j.req, Status: status, Hops: j.hops, Reply: reply}
	err := n.send(j.origin, h, m)
	resultMsgs.put(m)
	if err != nil {
		n.log.Warn("result undeliverable", "origin", j.origin, "req", j.req, "err", err)
	}
}

// fail reports a failed step of j to its origin.
func (n *Node) fail(j *job, code wire.ErrorCode, text string) {
	if j.origin == n.cfg.ID {
		n.finish(j.req, nil, nil, &RemoteError{Node: n.cfg.ID, Code: code, Text: text})
		return
	}
	if err := n.send(j.origin, wire.Header{RequestID: j.req}, wire.NewError(code, j.req, text)); err != nil {
		n.log.Warn("error undeliverable", "origin", j.origin, "req", j.req, "code", code, "text", text, "err", err)
	}
}
