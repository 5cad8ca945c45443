package transporttest

import (
	"sync"
	"testing"
	"time"

	"github.com/bcship/bcship/transport"
	"github.com/bcship/bcship/wire"
)

// Recorder is a transport.Handler that keeps the AMs that arrive, in
// order, and the peer deaths. Msgs and Downs are guarded by Mu. Block,
// when set before traffic starts, holds HandleMessage until it is closed.
type Recorder struct {
	Mu    sync.Mutex
	Msgs  []*wire.AM
	Downs []error
	Block chan struct{}
	ch    chan struct{}
}

var _ transport.Handler = (*Recorder)(nil)

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{ch: make(chan struct{}, 1)} }

// HandleMessage implements transport.Handler; it ignores all but AMs.
func (r *Recorder) HandleMessage(from uint32, h wire.Header, m wire.Message) {
	am, ok := m.(*wire.AM)
	if !ok {
		return
	}
	if r.Block != nil {
		<-r.Block
	}
	r.Mu.Lock()
	r.Msgs = append(r.Msgs, wire.Clone(am).(*wire.AM)) // am is the transport's
	r.Mu.Unlock()
	r.poke()
}

// PeerDown implements transport.Handler.
func (r *Recorder) PeerDown(peer uint32, err error) {
	r.Mu.Lock()
	r.Downs = append(r.Downs, err)
	r.Mu.Unlock()
	r.poke()
}

func (r *Recorder) poke() {
	select {
	case r.ch <- struct{}{}:
	default:
	}
}

// Wait waits up to d until cond holds (checked under Mu), or fails t
// saying it waited for what.
func (r *Recorder) Wait(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(d)
	for {
		r.Mu.Lock()
		ok := cond()
		r.Mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.ch:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
	}
}

// Count returns how many AMs arrived.
func (r *Recorder) Count() int {
	r.Mu.Lock()
	defer r.Mu.Unlock()
	return len(r.Msgs)
}
