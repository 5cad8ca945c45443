package shm

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bcship/bcship/wire"
)

// testRing returns the producer's and the consumer's views of one ring of
// size bytes in ordinary memory (8-aligned: a heap block of this size is).
func testRing(size int) (prod, cons *ring) {
	ctrl := make([]byte, ctrlSize)
	data := make([]byte, size)
	return newRing(ctrl, data), newRing(ctrl, data)
}

func TestRingWraparound(t *testing.T) {
	prod, cons := testRing(64)
	var want, got []byte
	for i := range 100 {
		// Sizes that do not divide the ring, so every offset is a
		// boundary sooner or later.
		p := bytes.Repeat([]byte{byte(i)}, 1+i%23)
		if s, err := prod.space(); err != nil || s < uint64(len(p)) {
			t.Fatalf("round %d: space %d, %v", i, s, err)
		}
		prod.put(p)
		prod.publish()
		want = append(want, p...)
		n, err := cons.avail()
		if err != nil || n != uint64(len(p)) {
			t.Fatalf("round %d: avail %d, %v; want %d", i, n, err, len(p))
		}
		q := make([]byte, n)
		cons.get(q)
		cons.release()
		got = append(got, q...)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("bytes changed crossing the ring's end")
	}
	if prod.pos != cons.pos || prod.pos < 10*64 {
		t.Fatalf("positions %d/%d: the ring did not wrap often", prod.pos, cons.pos)
	}
}

func TestRingFull(t *testing.T) {
	prod, cons := testRing(128)
	prod.put(make([]byte, 128))
	prod.publish()
	if s, err := prod.space(); s != 0 || err != nil {
		t.Fatalf("full ring: space %d, %v", s, err)
	}
	if n, _ := cons.avail(); n != 128 {
		t.Fatalf("avail %d, want 128", n)
	}
	cons.get(make([]byte, 100))
	if s, _ := prod.space(); s != 0 {
		t.Fatalf("space %d before release, want 0", s)
	}
	cons.release()
	if s, _ := prod.space(); s != 100 {
		t.Fatalf("space %d after release, want 100", s)
	}
}

// The peer owns the other position: garbage there must be refused, not
// used to index the data area.
func TestRingCorruptPositions(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(prod, cons *ring)
		prod bool // check the producer (space) rather than the consumer (avail)
	}{
		{"head beyond a ring ahead", func(p, c *ring) { p.head.Store(c.pos + 129) }, false},
		{"head behind the consumer", func(p, c *ring) { c.pos = 50; p.head.Store(10) }, false},
		{"tail ahead of the producer", func(p, c *ring) { p.pos = 10; c.tail.Store(11) }, true},
		{"tail more than a ring behind", func(p, c *ring) { p.pos = 1000; c.tail.Store(1000 - 129) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prod, cons := testRing(128)
			tc.mod(prod, cons)
			var err error
			if tc.prod {
				_, err = prod.space()
			} else {
				_, err = cons.avail()
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("got %v, want ErrCorrupt", err)
			}
		})
	}
}

// frame encodes an AM frame whose argument is n bytes derived from seq.
func frame(t testing.TB, seq uint64, n int) []byte {
	arg := make([]byte, n)
	for i := range arg {
		arg[i] = byte(seq + uint64(i)*7)
	}
	b, err := wire.AppendFrame(nil, wire.Header{RequestID: seq, Source: 1}, &wire.AM{Handler: "h", Arg: arg})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pump writes b into the ring as room allows (the producer's loop),
// calling idle when it is full.
func pump(prod *ring, b []byte, idle func()) {
	for len(b) > 0 {
		s, err := prod.space()
		if err != nil {
			panic(err)
		}
		n := min(int(s), len(b))
		if n == 0 {
			idle()
			continue
		}
		prod.put(b[:n])
		prod.publish()
		b = b[n:]
	}
}

// Frames of every size, several larger than the ring, arrive whole and in
// order however the producer's writes cut them.
func TestReaderManyFrames(t *testing.T) {
	prod, cons := testRing(256)
	rd := &reader{r: cons, maxFrame: 1 << 20}
	rng := rand.New(rand.NewPCG(1, 2))
	var sizes []int
	var frames, got [][]byte
	// poll keeps copies: a poll that takes anything reuses the memory of
	// the frames the last one returned.
	poll := func() bool {
		var took bool
		var err error
		if got, _, took, err = rd.poll(got[:0], nil); err != nil {
			t.Fatal(err)
		}
		for _, f := range got {
			frames = append(frames, bytes.Clone(f))
		}
		return took
	}
	for seq := range uint64(500) {
		n := rng.IntN(64)
		if seq%50 == 7 {
			n = 300 + rng.IntN(2000) // larger than the ring
		}
		sizes = append(sizes, n)
		b := frame(t, seq, n)
		// Write in odd pieces, polling whenever the ring fills.
		for len(b) > 0 {
			k := min(len(b), 1+rng.IntN(40))
			pump(prod, b[:k], func() { poll() })
			b = b[k:]
		}
	}
	for poll() {
	}
	if len(frames) != len(sizes) {
		t.Fatalf("%d frames, want %d", len(frames), len(sizes))
	}
	for i, f := range frames {
		if want := frame(t, uint64(i), sizes[i]); !bytes.Equal(f, want) {
			t.Fatalf("frame %d differs", i)
		}
	}
}

// Frames that arrive whole are read into the reader's arena, which the
// next poll reuses: no allocation per frame once it has grown.
func TestReaderWholeFramesAllocateNothing(t *testing.T) {
	prod, cons := testRing(4096)
	rd := &reader{r: cons, maxFrame: 1 << 20}
	f := frame(t, 1, 100)
	var frames [][]byte
	allocs := testing.AllocsPerRun(100, func() {
		prod.put(f)
		prod.put(f)
		prod.publish()
		var err error
		if frames, _, _, err = rd.poll(frames[:0], nil); err != nil {
			t.Fatal(err)
		}
		if len(frames) != 2 || !bytes.Equal(frames[0], f) || !bytes.Equal(frames[1], f) {
			t.Fatalf("got %d frames, want 2 copies of the frame", len(frames))
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations a poll, want 0", allocs)
	}
}

// A frame over the reader's limit is skipped whole and reported; the next
// frame is intact.
func TestReaderOversize(t *testing.T) {
	prod, cons := testRing(128)
	rd := &reader{r: cons, maxFrame: 100}
	var frames [][]byte
	var over []wire.Header
	poll := func() {
		var err error
		if frames, over, _, err = rd.poll(frames, over); err != nil {
			t.Fatal(err)
		}
	}
	pump(prod, frame(t, 1, 500), poll)
	pump(prod, frame(t, 2, 10), poll)
	poll()
	if len(over) != 1 || over[0].RequestID != 1 || len(frames) != 1 || !bytes.Equal(frames[0], frame(t, 2, 10)) {
		t.Fatalf("over %+v, %d frames", over, len(frames))
	}
}

func TestReaderLostFraming(t *testing.T) {
	prod, cons := testRing(128)
	rd := &reader{r: cons, maxFrame: 100}
	prod.put(bytes.Repeat([]byte{0xee}, wire.HeaderSize))
	prod.publish()
	if _, _, _, err := rd.poll(nil, nil); !errors.Is(err, ErrCorrupt) || !errors.Is(err, wire.ErrBadMagic) {
		t.Fatalf("got %v, want ErrCorrupt and wire.ErrBadMagic", err)
	}
}

// A producer and a consumer on two goroutines, each sleeping on the ring's
// futexes when it cannot go on: every frame arrives, in order (run with
// -race to check the publication order too).
func TestRingConcurrent(t *testing.T) {
	prod, cons := testRing(4096)
	rd := &reader{r: cons, maxFrame: 1 << 20}
	const count = 20000
	var stop atomic.Bool
	done := make(chan error, 1)
	go func() {
		var frames [][]byte
		seq := uint64(0)
		for seq < count {
			var err error
			var took bool
			frames, _, took, err = rd.poll(frames[:0], nil)
			if err != nil {
				done <- err
				return
			}
			for _, f := range frames {
				h, _ := wire.ParseHeader(f)
				if h.RequestID != seq || !bytes.Equal(f, frame(t, seq, int(seq%700))) {
					done <- fmt.Errorf("frame %d: got request %d or other bytes", seq, h.RequestID)
					return
				}
				seq++
			}
			if !took {
				cons.snooze(&stop, 5*time.Second)
			}
		}
		done <- nil
	}()
	for seq := range uint64(count) {
		pump(prod, frame(t, seq, int(seq%700)), func() { prod.waitSpace(&stop, 5*time.Second) })
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("consumer stuck")
	}
}

// The consumer sleeps on the futex; a publish wakes it long before the
// sleep's timeout.
func TestFutexWake(t *testing.T) {
	prod, cons := testRing(64)
	var stop atomic.Bool
	woke := make(chan time.Duration, 1)
	go func() {
		t0 := time.Now()
		cons.snooze(&stop, 10*time.Second)
		woke <- time.Since(t0)
	}()
	// Wait until it sleeps: it announced it in the word.
	for cons.sleep.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	prod.put([]byte{1})
	prod.publish()
	if d := <-woke; d > 2*time.Second {
		t.Fatalf("consumer slept %v: the publish did not wake it", d)
	}
	if cons.sleep.Load() != 0 {
		t.Fatal("sleep word still set after the wake")
	}
	// Stopping wakes it too.
	go func() {
		t0 := time.Now()
		cons.get(make([]byte, 1))
		cons.release()
		cons.snooze(&stop, 10*time.Second)
		woke <- time.Since(t0)
	}()
	for cons.sleep.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	stop.Store(true)
	cons.wakeConsumer()
	if d := <-woke; d > 2*time.Second {
		t.Fatalf("consumer slept %v after stop", d)
	}
}

// The producer half of the protocol, step by step: a publish that finds
// the consumer announced asleep clears the word, so a FUTEX_WAIT that the
// consumer has not yet entered returns at once instead of sleeping.
func TestFutexWakeBeforeWait(t *testing.T) {
	prod, cons := testRing(64)
	cons.sleep.Store(1) // snooze's announcement, its recheck found nothing
	prod.put([]byte{1})
	prod.publish() // lands before the consumer enters the wait
	if cons.sleep.Load() != 0 {
		t.Fatal("publish left the sleep word set")
	}
	t0 := time.Now()
	futexWait(cons.sleep, 1, 5*time.Second)
	if d := time.Since(t0); d > time.Second {
		t.Fatalf("FUTEX_WAIT slept %v on a cleared word", d)
	}
}

// Ping-pong between two goroutines that always sleep between messages
// (no spinning): a single lost wake-up shows as a wait of the full
// timeout.
func TestFutexNoLostWakeup(t *testing.T) {
	const timeout = 3 * time.Second
	iters := 20000
	if testing.Short() {
		iters = 2000
	}
	aProd, bCons := testRing(64)
	bProd, aCons := testRing(64)
	var stop atomic.Bool
	var worst atomic.Int64
	// recv waits for one byte on c: it polls a random while, then sleeps,
	// so the peer's publish lands anywhere around the sleep, the window
	// of a lost wake-up included.
	recv := func(c *ring, rng *rand.Rand) error {
		for spin := rng.IntN(400); ; spin-- {
			n, err := c.avail()
			if err != nil {
				return err
			}
			if n > 0 {
				c.get(make([]byte, 1))
				c.release()
				return nil
			}
			if spin > 0 {
				continue
			}
			t0 := time.Now()
			c.snooze(&stop, timeout)
			d := time.Since(t0)
			if d > time.Duration(worst.Load()) {
				worst.Store(int64(d))
			}
			if d >= timeout/2 {
				return fmt.Errorf("a sleep lasted %v of its %v timeout: a wake-up was lost", d, timeout)
			}
		}
	}
	send := func(p *ring) { p.put([]byte{1}); p.publish() }
	rngA, rngB := rand.New(rand.NewPCG(1, 1)), rand.New(rand.NewPCG(2, 2))
	var wg sync.WaitGroup
	wg.Add(1)
	errc := make(chan error, 2)
	go func() {
		defer wg.Done()
		for range iters {
			if err := recv(bCons, rngB); err != nil {
				errc <- err
				stop.Store(true)
				aCons.wakeConsumer()
				return
			}
			send(bProd)
		}
	}()
	start := time.Now()
	for range iters {
		send(aProd)
		if err := recv(aCons, rngA); err != nil || stop.Load() {
			stop.Store(true)
			bCons.wakeConsumer()
			wg.Wait()
			select {
			case err2 := <-errc:
				t.Fatal(err, err2)
			default:
				t.Fatal(err)
			}
		}
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	t.Logf("%d round trips through futex sleeps: %v each, longest sleep %v", iters, time.Since(start)/time.Duration(iters), time.Duration(worst.Load()))
}

func TestParseHeader(t *testing.T) {
	good := func() []byte {
		h := make([]byte, dataBase)
		copy(h, []byte{0x42, 0x53, 0x48, 0x4d, 0x53, 0x52, 0x4e, 0x47}) // segMagic
		h[offVersion] = segVersion
		h[offRingSize+1] = 0x10 // 4096
		return h
	}
	if l, err := parseHeader(good(), segmentSize(4096)); err != nil || l.ringSize != 4096 {
		t.Fatalf("good header: %+v, %v", l, err)
	}
	for _, tc := range []struct {
		name string
		mod  func([]byte)
		size int64
	}{
		{"magic", func(h []byte) { h[0] ^= 1 }, segmentSize(4096)},
		{"version", func(h []byte) { h[offVersion] = 2 }, segmentSize(4096)},
		{"not a power of two", func(h []byte) { h[offRingSize] = 1 }, segmentSize(4097)},
		{"too small", func(h []byte) { h[offRingSize+1] = 0x08 }, segmentSize(2048)},
		{"file shorter than the rings", func([]byte) {}, segmentSize(4096) - 1},
		{"file longer than the rings", func([]byte) {}, segmentSize(4096) + 4096},
		{"huge", func(h []byte) { h[offRingSize+1], h[offRingSize+3] = 0, 0x80 }, segmentSize(1 << 31)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := good()
			tc.mod(h)
			if _, err := parseHeader(h, tc.size); !errors.Is(err, ErrBadSegment) {
				t.Fatalf("got %v, want ErrBadSegment", err)
			}
		})
	}
}

func TestSegmentOpen(t *testing.T) {
	dir := t.TempDir()
	s, token, err := createSegment(dir, MinRingSize)
	if err != nil {
		t.Fatal(err)
	}
	defer s.unmap()
	name := filepath.Base(s.path)
	if fi, err := os.Stat(s.path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("segment file: %v, %v", fi, err)
	}
	bad := token
	bad[0] ^= 1
	if _, err := openSegment(dir, name, bad); !errors.Is(err, ErrBadSegment) {
		t.Fatalf("wrong token: %v", err)
	}
	// The failed open unlinked the name; make another.
	s2, token2, err := createSegment(dir, MinRingSize)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.unmap()
	for _, n := range []string{"../" + filepath.Base(s2.path), "/etc/passwd", "bcship-zz", ""} {
		if _, err := openSegment(dir, n, token2); !errors.Is(err, ErrBadSegment) {
			t.Fatalf("name %q: %v, want ErrBadSegment", n, err)
		}
	}
	o, err := openSegment(dir, filepath.Base(s2.path), token2)
	if err != nil {
		t.Fatal(err)
	}
	defer o.unmap()
	if _, err := os.Stat(s2.path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the acceptor left the name: %v", err)
	}
	// Two mappings, one memory.
	w, r := s2.ring(0), o.ring(0)
	w.put([]byte("through the file"))
	w.publish()
	got := make([]byte, 16)
	if n, _ := r.avail(); n != 16 {
		t.Fatalf("avail %d", n)
	}
	r.get(got)
	if string(got) != "through the file" {
		t.Fatalf("got %q", got)
	}
}

// A peer that shrinks the segment makes our next access fault: guard
// turns that into ErrCorrupt, and the process lives on.
func TestSegmentShrunk(t *testing.T) {
	dir := t.TempDir()
	s, _, err := createSegment(dir, MinRingSize)
	if err != nil {
		t.Fatal(err)
	}
	defer s.unmap()
	if err := os.Truncate(s.path, 0); err != nil {
		t.Fatal(err)
	}
	r := s.ring(1)
	err = guard(func() error {
		_, err := r.avail()
		return err
	})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("got %v, want ErrCorrupt", err)
	}
	// Panics that are not faults are not swallowed.
	defer func() {
		if recover() == nil {
			t.Fatal("guard swallowed a plain panic")
		}
	}()
	guard(func() error { panic("not a fault") })
}
