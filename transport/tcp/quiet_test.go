package tcp

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bcship/bcship/wire"
)

// replyTo signals every GET_REPLY on c.
type replyTo chan struct{}

func (c replyTo) HandleMessage(_ uint32, _ wire.Header, m wire.Message) {
	if _, ok := m.(*wire.GetReply); ok {
		c <- struct{}{}
	}
}

func (replyTo) PeerDown(uint32, error) {}

// BenchmarkQuietPeer is the round trip of a GET from a peer that sends one
// every 20 ms, to a server that another peer keeps busy ("hot") or not
// ("idle"), with default and with busy-polling transports, all in one
// process; in-p90 is the time from the send to the server's handler. It
// measures what back-to-back benchmarks miss: how busy-polling read loops
// that have parked come back. Compare the busy rows with the default rows
// of the same run. Measured: busy/idle p50 2.9 ms before yieldCPU, ~0.15 ms
// after (default ~0.13 ms); busy/hot p90 8.5 ms before pokes (park.go),
// ~1 ms after (the rest is the quiet client's own parked loop, starved by
// the other transports' spinners in this one process; a client in its own
// process has none). Each iteration is one quiet round trip; run with
// -benchtime=50x.
func BenchmarkQuietPeer(b *testing.B) {
	for _, busy := range []bool{false, true} {
		for _, hot := range []bool{false, true} {
			name := "default"
			if busy {
				name = "busy"
			}
			if hot {
				name += "/hot"
			} else {
				name += "/idle"
			}
			b.Run(name, func(b *testing.B) { quietPeer(b, busy, hot) })
		}
	}
}

// stamper is an answerer that notes when peer 3's GETs arrive.
type stamper struct {
	answerer
	at chan time.Time
}

func (a *stamper) HandleMessage(from uint32, h wire.Header, m wire.Message) {
	if _, ok := m.(*wire.Get); ok && from == 3 {
		a.at <- time.Now()
	}
	a.answerer.HandleMessage(from, h, m)
}

func quietPeer(b *testing.B, busy, hot bool) {
	ans := &stamper{at: make(chan time.Time, 1)}
	s, err := New(Config{Self: 1, Listen: "127.0.0.1:0", Handler: ans, BusyPoll: busy})
	if err != nil {
		b.Fatal(err)
	}
	ans.t = s
	defer s.Close()
	peer := func(id uint32) (*Transport, replyTo) {
		c := make(replyTo, 1)
		tr, err := New(Config{Self: id, Listen: "127.0.0.1:0", Handler: c, BusyPoll: busy})
		if err != nil {
			b.Fatal(err)
		}
		tr.SetPeerAddr(1, s.Addr().String())
		return tr, c
	}
	h, hc := peer(2)
	defer h.Close()
	q, qc := peer(3)
	defer q.Close()
	var stop atomic.Bool
	done := make(chan struct{})
	go func() { // the hot peer: back-to-back GETs
		defer close(done)
		for id := uint64(1); hot && !stop.Load(); id++ {
			if h.Send(1, wire.Header{RequestID: id}, &wire.Get{}) != nil {
				return
			}
			<-hc
		}
	}()
	defer func() { stop.Store(true); <-done }()
	rtts := make([]time.Duration, 0, b.N)
	var ins []time.Duration // from the send to the server's handler
	for i := 0; b.Loop(); i++ {
		time.Sleep(20 * time.Millisecond)
		t0 := time.Now()
		if err := q.Send(1, wire.Header{RequestID: uint64(i + 1)}, &wire.Get{}); err != nil {
			b.Fatal(err)
		}
		select {
		case <-qc:
		case <-time.After(5 * time.Second):
			b.Fatal("no reply in 5s")
		}
		rtts = append(rtts, time.Since(t0))
		ins = append(ins, (<-ans.at).Sub(t0))
	}
	slices.Sort(rtts)
	b.ReportMetric(float64(rtts[len(rtts)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(rtts[len(rtts)*9/10].Microseconds()), "p90-µs")
	b.ReportMetric(float64(rtts[len(rtts)-1].Microseconds()), "max-µs")
	slices.Sort(ins)
	b.ReportMetric(float64(ins[len(ins)*9/10].Microseconds()), "in-p90-µs")
}
