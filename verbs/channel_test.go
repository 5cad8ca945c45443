package verbs_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bcship/bcship/verbs"
)

type waitResult struct {
	cq  *verbs.CQ
	err error
	at  time.Time
}

// goWait runs ch.Wait(ctx) in a goroutine.
func goWait(ctx context.Context, ch *verbs.CompChannel) <-chan waitResult {
	r := make(chan waitResult, 1)
	go func() {
		cq, err := ch.Wait(ctx)
		r <- waitResult{cq, err, time.Now()}
	}()
	return r
}

// noEvent checks that Wait finds no event within d, and that its deadline
// ends it in time.
func noEvent(t *testing.T, ch *verbs.CompChannel, d time.Duration) {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cq, err := ch.Wait(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait: cq %p, %v; want no event", cq, err)
	}
	// The tolerance is for the guest's clock.
	if el := time.Since(start); el < d-10*time.Millisecond || el > d+2*time.Second {
		t.Fatalf("a %v deadline ended Wait after %v", d, el)
	}
}

// sendOne posts a receive on B and a 64-byte send from A.
func sendOne(t *testing.T, p *pair, id uint64) {
	t.Helper()
	if err := postOne(p, id); err != nil {
		t.Fatal(err)
	}
}

func postOne(p *pair, id uint64) error {
	rs, _ := p.mrB.SGE(0, 64)
	if err := p.b.PostRecv([]verbs.RecvWR{{ID: id, SGEs: []verbs.SGE{rs}}}); err != nil {
		return err
	}
	ss, _ := p.mrA.SGE(0, 64)
	return p.a.PostSend([]verbs.SendWR{{ID: id, Op: verbs.OpSend, SGEs: []verbs.SGE{ss}}})
}

// TestCompChannelWake: an armed CQ's completion wakes the waiter and can be
// polled; an unarmed CQ raises no event, an arm fires once, and completions
// already queued when the CQ is armed raise none.
func TestCompChannelWake(t *testing.T) {
	p := newChanPair(t, 4096, 16, true, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Not armed: the completions arrive, the channels stay quiet.
	sendOne(t, p, 1)
	waitN(t, p.cqA, 1)
	waitN(t, p.cqB, 1)
	noEvent(t, p.chB, 100*time.Millisecond)
	noEvent(t, p.chA, 10*time.Millisecond)

	// Armed, then a completion from another goroutine's post.
	if err := p.cqB.ReqNotify(false); err != nil {
		t.Fatal(err)
	}
	woke := goWait(ctx, p.chB)
	time.Sleep(50 * time.Millisecond) // let it block
	select {
	case r := <-woke:
		t.Fatalf("Wait returned before any completion: %p %v", r.cq, r.err)
	default:
	}
	posted := make(chan time.Time, 1)
	postErr := make(chan error, 1)
	go func() {
		posted <- time.Now()
		postErr <- postOne(p, 2)
	}()
	if err := <-postErr; err != nil {
		t.Fatal(err)
	}
	r := <-woke
	if r.err != nil || r.cq != p.cqB {
		t.Fatalf("Wait: %p (cqB %p), %v", r.cq, p.cqB, r.err)
	}
	t.Logf("post → wake: %v", r.at.Sub(<-posted))
	if wc := waitN(t, p.cqB, 1)[0]; wc.ID != 2 || wc.Opcode != verbs.WCRecv {
		t.Fatalf("after the wake-up: %+v", wc)
	}
	waitN(t, p.cqA, 1)

	// The arm fired: the next completion raises no event.
	sendOne(t, p, 3)
	waitN(t, p.cqA, 1)
	waitN(t, p.cqB, 1)
	noEvent(t, p.chB, 100*time.Millisecond)

	// A completion that is in the CQ before the arm raises no event
	// either (the REQ_NOTIFY_CQ write command cannot ask for missed
	// events): hence arm, poll again, then wait.
	sendOne(t, p, 4)
	waitN(t, p.cqA, 1)                // B's responder completed the receive before acking
	time.Sleep(20 * time.Millisecond) // and then some
	if err := p.cqB.ReqNotify(false); err != nil {
		t.Fatal(err)
	}
	noEvent(t, p.chB, 100*time.Millisecond)
	if wc := waitN(t, p.cqB, 1)[0]; wc.ID != 4 {
		t.Fatalf("queued completion: %+v", wc)
	}
	// Still armed: the next one does.
	sendOne(t, p, 5)
	if cq, err := p.chB.Wait(ctx); err != nil || cq != p.cqB {
		t.Fatalf("Wait: %p, %v", cq, err)
	}
	waitN(t, p.cqB, 1)
	waitN(t, p.cqA, 1)

	// Send completions wake the sender's channel; solicited-only arms
	// ignore them (rxe reports sends as unsolicited).
	if err := p.cqA.ReqNotify(true); err != nil {
		t.Fatal(err)
	}
	sendOne(t, p, 6)
	waitN(t, p.cqA, 1)
	waitN(t, p.cqB, 1)
	noEvent(t, p.chA, 100*time.Millisecond)
	if err := p.cqA.ReqNotify(false); err != nil {
		t.Fatal(err)
	}
	sendOne(t, p, 7)
	if cq, err := p.chA.Wait(ctx); err != nil || cq != p.cqA {
		t.Fatalf("Wait for the send: %p, %v", cq, err)
	}
	waitN(t, p.cqA, 1)
	waitN(t, p.cqB, 1)
}

// TestCompChannelSolicited: a solicited-only arm fires for a receive of a
// message sent with SendSolicited and not for one sent without.
func TestCompChannelSolicited(t *testing.T) {
	p := newChanPair(t, 4096, 16, true, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rs, _ := p.mrB.SGE(0, 64)
	ss, _ := p.mrA.SGE(0, 64)
	post := func(id uint64, flags verbs.SendFlags) {
		t.Helper()
		if err := p.b.PostRecv([]verbs.RecvWR{{ID: id, SGEs: []verbs.SGE{rs}}}); err != nil {
			t.Fatal(err)
		}
		if err := p.a.PostSend([]verbs.SendWR{{ID: id, Op: verbs.OpSend, Flags: flags, SGEs: []verbs.SGE{ss}}}); err != nil {
			t.Fatal(err)
		}
		waitN(t, p.cqA, 1)
	}
	if err := p.cqB.ReqNotify(true); err != nil {
		t.Fatal(err)
	}
	post(1, 0)
	noEvent(t, p.chB, 100*time.Millisecond)
	waitN(t, p.cqB, 1)
	post(2, verbs.SendSolicited)
	if cq, err := p.chB.Wait(ctx); err != nil || cq != p.cqB {
		t.Fatalf("Wait: %p, %v", cq, err)
	}
	if wc := waitN(t, p.cqB, 1)[0]; wc.ID != 2 {
		t.Fatalf("%+v", wc)
	}
}

// TestCompChannelInterrupt: Interrupt and ctx end a Wait promptly, an
// Interrupt with no waiter ends the next Wait, and the channel keeps
// working afterwards.
func TestCompChannelInterrupt(t *testing.T) {
	p := newChanPair(t, 4096, 16, true, nil)
	ch := p.chB
	bg := context.Background()
	prompt := func(what string, r waitResult, from time.Time, want error) {
		t.Helper()
		if !errors.Is(r.err, want) || r.cq != nil {
			t.Fatalf("%s: %p, %v; want %v", what, r.cq, r.err, want)
		}
		if el := r.at.Sub(from); el > time.Second {
			t.Fatalf("%s: Wait returned %v later", what, el)
		} else {
			t.Logf("%s: returned after %v", what, el)
		}
	}

	// Interrupt with no waiter: the next Wait returns at once, the one
	// after that waits.
	ch.Interrupt()
	now := time.Now()
	cq, err := ch.Wait(bg)
	prompt("early interrupt", waitResult{cq, err, time.Now()}, now, verbs.ErrInterrupted)
	var ve *verbs.Error
	if !errors.As(err, &ve) || ve.Errno != errnoEINTR || ve.Op != "get_cq_event" {
		t.Fatalf("interrupt error %#v", err)
	}
	noEvent(t, ch, 50*time.Millisecond)

	// Interrupt from another goroutine while Wait blocks.
	woke := goWait(bg, ch)
	time.Sleep(50 * time.Millisecond)
	now = time.Now()
	ch.Interrupt()
	prompt("interrupt", <-woke, now, verbs.ErrInterrupted)

	// Cancellation.
	ctx, cancel := context.WithCancel(bg)
	woke = goWait(ctx, ch)
	time.Sleep(50 * time.Millisecond)
	now = time.Now()
	cancel()
	prompt("cancel", <-woke, now, context.Canceled)
	if _, err := ch.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait on a cancelled context: %v", err)
	}

	// One waiter at a time.
	woke = goWait(bg, ch)
	time.Sleep(50 * time.Millisecond)
	if _, err := ch.Wait(bg); !errors.Is(err, verbs.ErrInUse) || !errors.Is(err, errnoEBUSY) {
		t.Fatalf("second Wait: %v", err)
	}
	// The first one still gets its event.
	if err := p.cqB.ReqNotify(false); err != nil {
		t.Fatal(err)
	}
	sendOne(t, p, 1)
	if r := <-woke; r.err != nil || r.cq != p.cqB {
		t.Fatalf("Wait: %p, %v", r.cq, r.err)
	}
	waitN(t, p.cqB, 1)
	waitN(t, p.cqA, 1)

	// Interrupts racing with events, many times: every Wait ends, with
	// the event or ErrInterrupted, and no event is lost.
	ctx, cancel = context.WithTimeout(bg, time.Minute)
	defer cancel()
	events, interrupts := 0, 0
	for i := range 300 {
		if err := p.cqB.ReqNotify(false); err != nil {
			t.Fatal(err)
		}
		postErr := make(chan error, 1)
		go func() {
			if i%2 == 0 {
				ch.Interrupt()
			}
			postErr <- postOne(p, uint64(i))
		}()
		for got := false; !got; {
			cq, err := ch.Wait(ctx)
			switch {
			case errors.Is(err, verbs.ErrInterrupted):
				interrupts++
			case err != nil:
				t.Fatalf("round %d: %v", i, err)
			case cq != p.cqB:
				t.Fatalf("round %d: event for %p", i, cq)
			default:
				events++
				got = true
			}
		}
		if err := <-postErr; err != nil {
			t.Fatal(err)
		}
		waitN(t, p.cqB, 1)
		waitN(t, p.cqA, 1)
	}
	t.Logf("300 rounds: %d events, %d interrupts", events, interrupts)
}

// TestCompChannelParked: goroutines in Wait are parked in the netpoller,
// not blocked in read(2) on threads of their own.
func TestCompChannelParked(t *testing.T) {
	c := open(t, nil)
	const n = 64
	chs := make([]*verbs.CompChannel, n)
	for i := range chs {
		ch, err := c.CreateCompChannel()
		if err != nil {
			t.Fatal(err)
		}
		chs[i] = ch
		t.Cleanup(func() { ch.Close() })
	}
	before := threads(t)
	results := make([]<-chan waitResult, n)
	for i, ch := range chs {
		results[i] = goWait(context.Background(), ch)
	}
	time.Sleep(300 * time.Millisecond)
	after := threads(t)
	t.Logf("threads: %d before, %d with %d goroutines in Wait", before, after, n)
	if after-before >= n/4 {
		t.Errorf("%d waiters took %d threads", n, after-before)
	}
	start := time.Now()
	for _, ch := range chs {
		ch.Interrupt()
	}
	for i, r := range results {
		if res := <-r; !errors.Is(res.err, verbs.ErrInterrupted) {
			t.Fatalf("waiter %d: %v", i, res.err)
		}
	}
	t.Logf("%d waiters interrupted in %v", n, time.Since(start))
}

func threads(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(l)
			}
			return n
		}
	}
	t.Fatal("no Threads line in /proc/self/status")
	return 0
}

// TestCompChannelPingPong runs 2,000 messages each way between two sides
// that block on their channels whenever their CQs are empty (arm, poll
// again, wait): a lost wake-up would stall it. At the end, the events the
// kernel reported match those Wait returned.
func TestCompChannelPingPong(t *testing.T) {
	iters := 2000
	p := newChanPair(t, 1<<16, 128, false, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// latSend's sides, with a deadline: a lost wake-up fails instead of
	// hanging.
	client, server := p.sides()
	client.ctx, server.ctx = ctx, ctx
	start := time.Now()
	errs := make(chan error, 2)
	run := func(s *side, first bool) {
		rsge, _ := s.mr.SGE(4096, 8)
		sge, _ := s.mr.SGE(0, 8)
		for range 64 {
			if err := s.qp.PostRecv([]verbs.RecvWR{{SGEs: []verbs.SGE{rsge}}}); err != nil {
				errs <- err
				return
			}
		}
		reposted := 0
		for i := range iters {
			// The client sends message i after answer i-1, the server
			// answer i after message i. Counts are absolute: waiting for
			// a send may have taken a receive completion too.
			need := i + 1
			if first {
				need = i
			}
			if err := s.waitRecvs(need); err != nil {
				errs <- fmt.Errorf("receive %d: %w", need, err)
				return
			}
			for ; reposted < s.recvs; reposted++ {
				if err := s.qp.PostRecv([]verbs.RecvWR{{SGEs: []verbs.SGE{rsge}}}); err != nil {
					errs <- err
					return
				}
			}
			if err := s.qp.PostSend([]verbs.SendWR{{ID: uint64(i), Op: verbs.OpSend, Flags: verbs.SendSignaled, SGEs: []verbs.SGE{sge}}}); err != nil {
				errs <- err
				return
			}
			if err := s.waitSends(i + 1); err != nil {
				errs <- fmt.Errorf("send %d: %w", i, err)
				return
			}
		}
		if first {
			if err := s.waitRecvs(iters); err != nil {
				errs <- fmt.Errorf("last receive: %w", err)
				return
			}
		}
		errs <- nil
	}
	go run(client, true)
	go run(server, false)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	el := time.Since(start)
	if client.recvs != iters || server.recvs != iters || client.sends != iters || server.sends != iters {
		t.Fatalf("client %d/%d, server %d/%d recvs/sends", client.recvs, client.sends, server.recvs, server.sends)
	}
	t.Logf("%d round trips in %v (%v each); wake-ups: client %d, server %d", iters, el.Round(time.Millisecond),
		(el / time.Duration(iters)).Round(time.Microsecond), client.wakes, server.wakes)
	if client.wakes+server.wakes < iters {
		t.Errorf("only %d wake-ups for %d round trips: the sides hardly blocked", client.wakes+server.wakes, iters)
	}
	// Events left over from arms whose completions were polled are
	// dropped when the CQs go; every event read is one the kernel counted.
	for _, q := range []*verbs.QP{p.a, p.b} {
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []*side{client, server} {
		if err := s.cq.Close(); err != nil {
			t.Fatal(err)
		}
		got, reported := verbs.CQEventCounts(s.cq)
		if int(got) != s.wakes || got != reported {
			t.Errorf("events: %d returned by Wait, %d counted by the side, %d reported by the kernel", got, s.wakes, reported)
		}
	}
}

// TestCompChannelClose: close ordering and misuse.
func TestCompChannelClose(t *testing.T) {
	c := open(t, nil)
	bg := context.Background()
	ch, err := c.CreateCompChannel()
	if err != nil {
		t.Fatal(err)
	}
	cq, err := c.CreateCQWithChannel(16, ch)
	if err != nil {
		t.Fatal(err)
	}
	// The channel outlives its CQs.
	if err := ch.Close(); !errors.Is(err, verbs.ErrInUse) || !errors.Is(err, errnoEBUSY) {
		t.Fatalf("closing a channel with a CQ: %v", err)
	}
	if err := cq.Close(); err != nil {
		t.Fatal(err)
	}
	if err := cq.ReqNotify(false); !errors.Is(err, verbs.ErrClosed) {
		t.Fatalf("ReqNotify on a closed CQ: %v", err)
	}
	// A waiter is woken by Close.
	woke := goWait(bg, ch)
	time.Sleep(50 * time.Millisecond)
	now := time.Now()
	for range 2 { // idempotent
		if err := ch.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if r := <-woke; !errors.Is(r.err, verbs.ErrClosed) || r.at.Sub(now) > time.Second {
		t.Fatalf("Wait across Close: %v after %v", r.err, r.at.Sub(now))
	}
	if _, err := ch.Wait(bg); !errors.Is(err, verbs.ErrClosed) {
		t.Fatalf("Wait on a closed channel: %v", err)
	}
	ch.Interrupt() // harmless
	if _, err := c.CreateCQWithChannel(16, ch); !errors.Is(err, verbs.ErrClosed) {
		t.Fatalf("CQ on a closed channel: %v", err)
	}

	// A plain CQ cannot be armed.
	plain, err := c.CreateCQ(16)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := plain.ReqNotify(false); !errors.Is(err, verbs.ErrNoChannel) {
		t.Fatalf("ReqNotify without a channel: %v", err)
	}

	// A channel serves only its own context.
	c2 := open(t, nil)
	ch2, err := c2.CreateCompChannel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateCQWithChannel(16, ch2); err == nil {
		t.Fatal("CQ with another context's channel")
	}

	// Events still queued for a CQ that is destroyed are dropped.
	p := newChanPair(t, 4096, 16, true, nil)
	if err := p.cqB.ReqNotify(false); err != nil {
		t.Fatal(err)
	}
	sendOne(t, p, 1)
	waitN(t, p.cqA, 1)
	waitN(t, p.cqB, 1)
	time.Sleep(20 * time.Millisecond)
	if err := p.b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.cqB.Close(); err != nil {
		t.Fatal(err)
	}
	if got, reported := verbs.CQEventCounts(p.cqB); got != 0 || reported != 0 {
		t.Fatalf("unread event: %d returned, %d reported", got, reported)
	}
	noEvent(t, p.chB, 50*time.Millisecond)

	// Closing the context closes its channels, CQs or not, and wakes
	// their waiters; closing them afterwards is a no-op.
	woke = goWait(bg, ch2)
	cq2, err := c2.CreateCQWithChannel(16, ch2)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	now = time.Now()
	if err := c2.Close(); err != nil {
		t.Fatal(err)
	}
	if r := <-woke; !errors.Is(r.err, verbs.ErrClosed) || r.at.Sub(now) > time.Second {
		t.Fatalf("Wait across Context.Close: %v after %v", r.err, r.at.Sub(now))
	}
	if err := cq2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ch2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c2.CreateCompChannel(); !errors.Is(err, verbs.ErrClosed) {
		t.Fatalf("CreateCompChannel on a closed context: %v", err)
	}
}

// TestCompChannelCreatePaths binds CQs to a channel through each creation
// path (the fd attribute of UVERBS_METHOD_CQ_CREATE, comp_channel in the
// CREATE_CQ struct by INVOKE_WRITE and by write()) and wakes on them.
func TestCompChannelCreatePaths(t *testing.T) {
	rxeDevice(t)
	for _, path := range createPaths {
		t.Run(path.name, func(t *testing.T) {
			c := open(t, &path.opts)
			pd, err := c.AllocPD()
			if err != nil {
				t.Fatal(err)
			}
			defer pd.Close()
			ch, err := c.CreateCompChannel()
			if err != nil {
				t.Fatal(err)
			}
			defer ch.Close()
			cq, err := c.CreateCQWithChannel(32, ch)
			if err != nil {
				t.Fatal(err)
			}
			defer cq.Close()
			qp, err := pd.CreateQP(verbs.QPConfig{SendCQ: cq, RecvCQ: cq, SignalAll: true,
				Caps: verbs.QPCaps{MaxSendWR: 8, MaxRecvWR: 8, MaxInline: 32}})
			if err != nil {
				t.Fatal(err)
			}
			defer qp.Close()
			buf, err := verbs.AllocBuffer(4096)
			if err != nil {
				t.Fatal(err)
			}
			defer verbs.FreeBuffer(buf)
			mr, err := pd.RegMR(buf, verbs.AccessAll)
			if err != nil {
				t.Fatal(err)
			}
			defer mr.Close()
			g, err := verbs.FindRoCEv2GID(c.Device.Name, 1)
			if err != nil {
				t.Fatal(err)
			}
			if err := qp.Connect(verbs.ConnectConfig{GIDIndex: uint8(g.Index), LocalPSN: 7, Remote: verbs.Endpoint{QPN: qp.QPN, PSN: 7, GID: g.GID}}); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			rs, _ := mr.SGE(2048, 16)
			for i := range 3 {
				if err := cq.ReqNotify(false); err != nil {
					t.Fatal(err)
				}
				if err := qp.PostRecv([]verbs.RecvWR{{ID: 1, SGEs: []verbs.SGE{rs}}}); err != nil {
					t.Fatal(err)
				}
				if err := qp.PostSend([]verbs.SendWR{{ID: 2, Op: verbs.OpSend, Inline: []byte("loopback")}}); err != nil {
					t.Fatal(err)
				}
				if got, err := ch.Wait(ctx); err != nil || got != cq {
					t.Fatalf("round %d: Wait: %p, %v", i, got, err)
				}
				waitN(t, cq, 2)
			}
			if n := c.WriteFallbacks(); n != 0 {
				t.Fatalf("%d commands fell back to write()", n)
			}
		})
	}
}

// BenchmarkReqNotify is the cost of arming a CQ, the system call a blocking
// poller adds to each wait, through RDMA_VERBS_IOCTL and through write().
func BenchmarkReqNotify(b *testing.B) {
	rxeDevice(b)
	for _, v := range []struct {
		name string
		opts verbs.Options
	}{{"ioctl", verbs.Options{}}, {"write", verbs.Options{ForceWrite: true}}} {
		b.Run(v.name, func(b *testing.B) {
			c := open(b, &v.opts)
			ch, err := c.CreateCompChannel()
			if err != nil {
				b.Fatal(err)
			}
			defer ch.Close()
			cq, err := c.CreateCQWithChannel(16, ch)
			if err != nil {
				b.Fatal(err)
			}
			defer cq.Close()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := cq.ReqNotify(false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
