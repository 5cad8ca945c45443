package bcship

import (
	"fmt"
	"runtime"
	"time"
	"unsafe"

	"github.com/bcship/bcship/internal/hostrt"
)

// invState is the memory one kernel run hands to native code: the context
// and the outbox, pooled across runs.
type invState struct {
	ctx    hostrt.Ctx
	outbox []byte
	acts   []hostrt.Action // the outbox parsed; aliases outbox
}

func (n *Node) getState() *invState {
	if s, ok := n.outbox.Get().(*invState); ok {
		return s
	}
	return &invState{outbox: make([]byte, n.cfg.OutboxSize)}
}

// run calls the kernel function fn with arg at now, to be aborted at
// deadline. On success it returns the entry's status and the outbox
// actions, which alias the state's outbox: the caller passes st back to
// n.outbox.Put when it is done with them.
func (n *Node) run(now, deadline time.Time, fn uintptr, arg []byte) (status int64, acts []hostrt.Action, st *invState, err error) {
	rs := n.regions.Load()
	st = n.getState()
	st.ctx = hostrt.Ctx{
		Outbox: &st.outbox[0], OutboxCap: uint64(len(st.outbox)),
		Self: n.cfg.ID, Nodes: n.nodes.Load(),
	}
	if len(rs.descs) > 0 {
		st.ctx.Regions, st.ctx.NRegions = &rs.descs[0], uint64(len(rs.descs))
	}
	var argp unsafe.Pointer
	if len(arg) > 0 {
		argp = unsafe.Pointer(&arg[0])
	}
	status, err = n.ex.CallUntil(now, deadline, fn, unsafe.Pointer(&st.ctx), argp, uint64(len(arg)))
	runtime.KeepAlive(st)
	runtime.KeepAlive(rs)
	runtime.KeepAlive(arg)
	if err != nil {
		return status, nil, st, err
	}
	if st.ctx.Dropped > 0 {
		n.log.Warn("kernel outbox full: actions dropped", "dropped", st.ctx.Dropped, "outbox", len(st.outbox))
	}
	if st.ctx.OutboxLen > uint64(len(st.outbox)) {
		return status, nil, st, fmt.Errorf("%w: length %d over capacity %d", hostrt.ErrOutbox, st.ctx.OutboxLen, len(st.outbox))
	}
	st.acts, err = hostrt.AppendOutbox(st.acts[:0], st.outbox[:st.ctx.OutboxLen])
	return status, st.acts, st, err
}
