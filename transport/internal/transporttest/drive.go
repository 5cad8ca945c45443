package transporttest

import (
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Answers tracks the answers a Driver test waits for, by id: the test
// registers an id with Expect before it sends, and the transport's handler
// calls Arrived when the answer comes. Arrived notes whether it ran inside
// a Drive (its goroutine's stack holds DriveFrame).
type Answers struct {
	DriveFrame string // e.g. "tcp.(*Transport).Drive"; empty: do not look (benchmarks)

	mu      sync.Mutex
	waiting map[uint64]chan struct{}
	got     map[uint64]int
	driven  int
}

// NewAnswers returns Answers that recognize Drive by frame.
func NewAnswers(frame string) *Answers {
	return &Answers{DriveFrame: frame, waiting: map[uint64]chan struct{}{}, got: map[uint64]int{}}
}

// Expect returns a channel closed when the answer id arrives.
func (a *Answers) Expect(id uint64) chan struct{} {
	ch := make(chan struct{})
	a.mu.Lock()
	a.waiting[id] = ch
	a.mu.Unlock()
	return ch
}

// Arrived records the answer id; the handler calls it.
func (a *Answers) Arrived(id uint64) {
	inDrive := false
	if a.DriveFrame != "" {
		buf := make([]byte, 4096)
		inDrive = strings.Contains(string(buf[:runtime.Stack(buf, false)]), a.DriveFrame)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.got[id]++
	if inDrive {
		a.driven++
	}
	if ch := a.waiting[id]; ch != nil {
		delete(a.waiting, id)
		close(ch)
	}
}

// Closed is a channel as a transport.Answered: answered once closed.
type Closed <-chan struct{}

// Answered implements transport.Answered.
func (c Closed) Answered() bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// DriveFuncs are what CheckDrive needs of a pair of transports: send the
// request id to the peer (which answers it), and drive until done.
type DriveFuncs struct {
	Send  func(id uint64) error
	Drive func(done <-chan struct{}) bool
}

// RoundTrip sends id and waits for its answer, driving first; it reports
// whether Drive saw the answer.
func (a *Answers) RoundTrip(t testing.TB, f DriveFuncs, id uint64) bool {
	done := a.Expect(id)
	if err := f.Send(id); err != nil {
		t.Error(err)
		return false
	}
	drove := f.Drive(done)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Errorf("answer %d never arrived (drove: %v)", id, drove)
	}
	return drove
}

// CheckDrive makes n round trips driving, then 10 without (the receive
// loop must be back), and checks that Drive delivered answers on the
// caller's goroutine and that every answer arrived exactly once. Ids start
// at 1.
func (a *Answers) CheckDrive(t *testing.T, f DriveFuncs, n int) {
	t.Helper()
	drove := 0
	for i := range uint64(n) {
		if a.RoundTrip(t, f, i+1) {
			drove++
		}
	}
	a.mu.Lock()
	driven := a.driven
	a.mu.Unlock()
	t.Logf("%d of %d answers seen by Drive, %d delivered inside it", drove, n, driven)
	if drove == 0 || driven == 0 {
		t.Fatalf("no answer was delivered inside Drive (%d seen, %d delivered there)", drove, driven)
	}
	var chans []chan struct{}
	for i := range uint64(10) {
		id := uint64(n) + 1 + i
		chans = append(chans, a.Expect(id))
		if err := f.Send(id); err != nil {
			t.Fatal(err)
		}
	}
	for i, ch := range chans {
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("answer %d after the drives never arrived: the receive loop did not resume", n+1+i)
		}
	}
	a.CheckOnce(t, n+10)
}

// CheckDriveConcurrent has callers goroutines make each round trips at
// once, driving, and checks every answer arrived exactly once.
func (a *Answers) CheckDriveConcurrent(t *testing.T, f DriveFuncs, callers, each int) {
	t.Helper()
	var wg sync.WaitGroup
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				a.RoundTrip(t, f, uint64(1+c*each+i))
			}
		}()
	}
	wg.Wait()
	a.CheckOnce(t, callers*each)
}

// CheckOnce checks that answers 1…n arrived exactly once each.
func (a *Answers) CheckOnce(t testing.TB, n int) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	for id := range uint64(n) {
		if got := a.got[id+1]; got != 1 {
			t.Errorf("answer %d delivered %d times", id+1, got)
		}
	}
}
