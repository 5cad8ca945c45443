//go:build linux && (amd64 || arm64)

package exec_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/bcship/bcship/exec"
	"github.com/bcship/bcship/internal/hostrt"
	"github.com/bcship/bcship/loader"
	"golang.org/x/sys/unix"
)

// cEnv runs testdata/faults.c, compiled by clang and linked by bcship's
// loader against the embedded host runtime: the whole path a shipped
// kernel takes.
type cEnv struct {
	img    *loader.Image
	ex     *exec.Executor
	data   []byte // region "data"
	region []hostrt.Region
	name   []byte
}

func newCEnv(t *testing.T) *cEnv {
	t.Helper()
	arch := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[runtime.GOARCH]
	obj, err := os.ReadFile("../testdata/faults." + arch + ".O2.pic.small.o")
	if err != nil {
		t.Fatal(err)
	}
	rt, err := hostrt.Load()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	img, err := loader.Load(obj, rt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { img.Close() })
	symbolize := func(pc uintptr) (string, uintptr, bool) {
		if name, off, ok := img.SymbolAt(pc); ok {
			return name, off, ok
		}
		return rt.Image().SymbolAt(pc)
	}
	ex, err := exec.New(exec.Options{Symbolize: symbolize})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Close() })
	e := &cEnv{img: img, ex: ex, data: make([]byte, 8*100), name: []byte("data")}
	for i := 0; i < 100; i++ {
		binary.LittleEndian.PutUint64(e.data[8*i:], uint64(i*i))
	}
	e.region = []hostrt.Region{{Name: &e.name[0], NameLen: uint64(len(e.name)), Base: &e.data[0], Len: uint64(len(e.data))}}
	return e
}

type cResult struct {
	ret     int64
	acts    []hostrt.Action
	dropped uint64
}

// call runs entry with arg and an outbox of outboxSize bytes.
func (e *cEnv) call(ctx context.Context, entry string, arg []byte, outboxSize int) (cResult, error) {
	fn, err := e.img.Symbol(entry)
	if err != nil {
		return cResult{}, err
	}
	outbox := make([]byte, outboxSize)
	argBuf := append(append([]byte(nil), arg...), 0) // never a nil pointer
	c := hostrt.Ctx{
		Outbox: &outbox[0], OutboxCap: uint64(len(outbox)),
		Regions: &e.region[0], NRegions: uint64(len(e.region)),
		Self: 3, Nodes: 4,
	}
	r, err := e.ex.Call(ctx, fn, unsafe.Pointer(&c), unsafe.Pointer(&argBuf[0]), uint64(len(arg)))
	runtime.KeepAlive(outbox)
	runtime.KeepAlive(argBuf)
	runtime.KeepAlive(&c)
	if err != nil {
		return cResult{}, err
	}
	acts, err := hostrt.ParseOutbox(outbox[:c.OutboxLen])
	if err != nil {
		return cResult{}, err
	}
	return cResult{ret: r, acts: acts, dropped: c.Dropped}, nil
}

func u64s(v ...uint64) []byte {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], x)
	}
	return b
}

// checkEcho runs the ordinary echo kernel and checks result and outbox.
func (e *cEnv) checkEcho(t *testing.T, msg []byte) {
	t.Helper()
	res, err := e.call(context.Background(), "k_echo", msg, 1024)
	if err != nil {
		t.Fatalf("k_echo: %v", err)
	}
	if res.ret != int64(len(msg)) || len(res.acts) != 2 {
		t.Fatalf("k_echo = %d with %d actions", res.ret, len(res.acts))
	}
	if a := res.acts[0]; a.Op != hostrt.OpLog || string(a.A) != "echo" {
		t.Fatalf("first action %v %q, want log \"echo\"", a.Op, a.A)
	}
	rev := make([]byte, len(msg))
	for i := range msg {
		rev[i] = msg[len(msg)-1-i]
	}
	if a := res.acts[1]; a.Op != hostrt.OpReply || !bytes.Equal(a.A, rev) {
		t.Fatalf("reply %v %q, want %q", a.Op, a.A, rev)
	}
}

func TestCKernelResults(t *testing.T) {
	e := newCEnv(t)
	e.checkEcho(t, []byte("shipped code, next to the data"))

	res, err := e.call(context.Background(), "k_region", nil, 1024)
	if err != nil {
		t.Fatal(err)
	}
	var sum uint64
	for i := uint64(0); i < 100; i++ {
		sum += i * i
	}
	if res.ret != 3*1000+4 {
		t.Errorf("k_region returned %d, want bc_self*1000+bc_nodes = 3004", res.ret)
	}
	if len(res.acts) != 2 {
		t.Fatalf("k_region: %d actions, want 2 replies", len(res.acts))
	}
	for _, a := range res.acts {
		if a.Op != hostrt.OpReply || binary.LittleEndian.Uint64(a.A) != sum {
			t.Errorf("reply %v %x, want sum %d", a.Op, a.A, sum)
		}
	}

	// A full outbox refuses further records and counts them as dropped;
	// what fit is intact. Each record is 32 bytes of header + 100 + pad 4.
	res, err = e.call(context.Background(), "k_flood", nil, 4096)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(4096 / 136); res.ret != want || len(res.acts) != int(want) || res.dropped != 1 {
		t.Errorf("k_flood: %d sent, %d parsed, %d dropped; want %d, %d, 1", res.ret, len(res.acts), res.dropped, want, want)
	}

	res, err = e.call(context.Background(), "k_stack512", nil, 64)
	if err != nil {
		t.Fatal(err)
	}
	if res.ret != 127*128/2 {
		t.Errorf("k_stack512 = %d, want %d", res.ret, 127*128/2)
	}
}

// TestCKernelFaults: every way a kernel can go wrong costs one typed
// error, and the same executor then runs 1,000 good calls correctly.
func TestCKernelFaults(t *testing.T) {
	e := newCEnv(t)
	nx := make([]byte, 64) // Go heap: readable, never executable
	type tc struct {
		name, entry string
		arg         []byte
		sig         unix.Signal
		deadline    bool
		overflow    bool
		checkAddr   func(uintptr) bool
	}
	cases := []tc{
		{name: "null dereference", entry: "k_null", arg: u64s(0), sig: unix.SIGSEGV, checkAddr: func(a uintptr) bool { return a == 0 }},
		{name: "write to rodata", entry: "k_rodata", sig: unix.SIGSEGV, checkAddr: e.img.Contains},
		{name: "jump to garbage", entry: "k_jump", arg: u64s(uint64(uintptr(unsafe.Pointer(&nx[0])))), sig: unix.SIGSEGV},
		{name: "trap", entry: "k_trap", sig: map[string]unix.Signal{"amd64": unix.SIGILL, "arm64": unix.SIGTRAP}[runtime.GOARCH]},
		{name: "stack overflow", entry: "k_recurse", sig: unix.SIGSEGV, overflow: true},
		{name: "infinite loop", entry: "k_spin", deadline: true},
	}
	if runtime.GOARCH == "amd64" {
		// arm64 division by zero does not trap; it returns 0.
		cases = append(cases, tc{name: "division by zero", entry: "k_div", arg: u64s(7, 0), sig: unix.SIGFPE})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			if c.deadline {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, 100*time.Millisecond)
				defer cancel()
			}
			_, err := e.call(ctx, c.entry, c.arg, 256)
			if c.deadline {
				if !errors.Is(err, exec.ErrDeadline) || !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("error %v, want ErrDeadline", err)
				}
			} else {
				var f *exec.Fault
				if !errors.As(err, &f) {
					t.Fatalf("error %v is not a *exec.Fault", err)
				}
				if f.Signal != c.sig {
					t.Errorf("signal %v, want %v (%v)", f.Signal, c.sig, err)
				}
				if c.checkAddr != nil && !c.checkAddr(f.Addr) {
					t.Errorf("fault address %#x unexpected (%v)", f.Addr, err)
				}
				if c.overflow && !f.StackOverflow {
					t.Errorf("not reported as a stack overflow: %v", err)
				}
				if c.entry != "k_jump" && f.Symbol == "" {
					t.Errorf("fault not symbolized: %v", err)
				}
				t.Logf("%v", err)
			}
			for i := 0; i < 1000; i++ {
				e.checkEcho(t, []byte{byte(i), byte(i >> 8), 'x'})
			}
		})
	}
}

// TestCKernelConcurrent mixes faulting and good calls on 8 goroutines: no
// crash, no lost or mixed-up result.
func TestCKernelConcurrent(t *testing.T) {
	e := newCEnv(t)
	n := 2000
	if testing.Short() {
		n = 200
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				if i%10 == 3 {
					_, err := e.call(context.Background(), "k_null", u64s(0), 64)
					var f *exec.Fault
					if !errors.As(err, &f) {
						errs <- err
						return
					}
					continue
				}
				msg := []byte{byte(g), byte(i), byte(i >> 8)}
				res, err := e.call(context.Background(), "k_echo", msg, 256)
				if err != nil || res.ret != 3 || len(res.acts) != 2 || res.acts[1].A[0] != byte(i>>8) || res.acts[1].A[2] != byte(g) {
					errs <- fmt.Errorf("goroutine %d call %d: echo of %x gave %d, %+v, %v", g, i, msg, res.ret, res.acts, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
