package toolchain

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Tool names an LLVM program bcship runs.
type Tool string

// The tools bcship looks for.
const (
	Clang    Tool = "clang"
	LLC      Tool = "llc"
	LLD      Tool = "ld.lld"
	Objcopy  Tool = "llvm-objcopy"
	LLVMLink Tool = "llvm-link"
)

// Tools lists every tool a Toolchain can look for, in a stable order.
func Tools() []Tool { return []Tool{Clang, LLC, LLD, Objcopy, LLVMLink} }

// versions are the LLVM major versions tried after the plain name, newest
// first: clang-19, clang-18, …
func versions() []int { return []int{19, 18, 17, 16, 15, 14} }

// EnvVar is the environment variable that overrides where t is found:
// BCSHIP_CLANG, BCSHIP_LLC, BCSHIP_LD_LLD, BCSHIP_LLVM_OBJCOPY,
// BCSHIP_LLVM_LINK.
func (t Tool) EnvVar() string {
	r := strings.NewReplacer(".", "_", "-", "_")
	return "BCSHIP_" + strings.ToUpper(r.Replace(string(t)))
}

// Package is the Debian package that installs t.
func (t Tool) Package() string {
	switch t {
	case Clang:
		return "clang"
	case LLD:
		return "lld"
	}
	return "llvm"
}

// Version is an LLVM release.
type Version struct {
	Major, Minor, Patch int
}

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// ToolInfo describes a found tool.
type ToolInfo struct {
	Tool    Tool
	Path    string  // as found on PATH or given by $BCSHIP_<TOOL>
	Version Version // LLVM version
	// Banner is the first line of --version, e.g. "Debian LLVM version
	// 14.0.6"; it tells builds of the same version apart.
	Banner string
	// Targets are the registered LLVM targets, sorted ("aarch64",
	// "riscv64", "x86-64", …); set for clang and llc.
	Targets []string
	// DefaultTriple is the tool's host triple ("x86_64-pc-linux-gnu"); set
	// for clang and llc.
	DefaultTriple string
	// HostCPU is what -mcpu=native means to llc ("znver3"); set for llc.
	HostCPU string
}

// Supports reports whether the tool has a backend for triple's
// architecture.
func (ti *ToolInfo) Supports(triple string) bool {
	_, ok := slices.BinarySearch(ti.Targets, targetName(triple))
	return ok
}

// Runner runs a prepared command and waits for it, like (*exec.Cmd).Run.
// Tests substitute one to count or observe tool runs.
type Runner func(cmd *exec.Cmd) error

// Config configures a Toolchain. The zero value uses the process
// environment.
type Config struct {
	// Getenv reads environment variables ($BCSHIP_<TOOL>,
	// SOURCE_DATE_EPOCH, XDG_CACHE_HOME, HOME); default os.Getenv.
	Getenv func(string) string
	// LookPath finds a program; default exec.LookPath.
	LookPath func(string) (string, error)
	// Run runs every tool; default (*exec.Cmd).Run.
	Run Runner
	// CacheDir holds objects compiled from bitcode; default
	// $XDG_CACHE_HOME/bcship, else ~/.cache/bcship.
	CacheDir string
	// Logger receives warnings (cache write failures, …); default discards.
	Logger *slog.Logger
}

// Toolchain finds LLVM tools and runs them. Probes are cached in the value,
// so each tool is looked up and asked for its version once. It is safe for
// concurrent use.
type Toolchain struct {
	cfg Config

	mu     sync.Mutex
	probes map[probeKey]*ToolInfo

	llcRuns   atomic.Int64
	cacheHits atomic.Int64
}

type probeKey struct {
	tool  Tool
	major int // preferred major version, 0 for none
}

// New returns a Toolchain that probes tools lazily, when first needed. Use
// it where only some tools are needed (a node compiling bitcode needs llc,
// not clang).
func New(cfg Config) *Toolchain {
	if cfg.Getenv == nil {
		cfg.Getenv = os.Getenv
	}
	if cfg.LookPath == nil {
		cfg.LookPath = exec.LookPath
	}
	if cfg.Run == nil {
		cfg.Run = (*exec.Cmd).Run
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Toolchain{cfg: cfg, probes: map[probeKey]*ToolInfo{}}
}

// Find returns a Toolchain with the process environment after checking that
// clang, which every build needs, is installed. Other tools are probed when
// first used.
func Find(ctx context.Context) (*Toolchain, error) {
	tc := New(Config{})
	if _, err := tc.Tool(ctx, Clang); err != nil {
		return nil, err
	}
	return tc, nil
}

// Tool finds t: $BCSHIP_<TOOL> if set, else the first of t, t-19, t-18, …,
// t-14 on PATH. It returns a *ToolError naming the Debian package when t is
// missing. The result is the caller's to modify.
func (tc *Toolchain) Tool(ctx context.Context, t Tool) (*ToolInfo, error) {
	ti, err := tc.probe(ctx, t, 0)
	if err != nil {
		return nil, err
	}
	cp := *ti
	cp.Targets = slices.Clone(ti.Targets)
	return &cp, nil
}

// companion finds a tool to use on clang's output: one of the same major
// version (t-major) is preferred, since bitcode tools cannot read bitcode
// newer than themselves.
func (tc *Toolchain) companion(ctx context.Context, t Tool, major int) (*ToolInfo, error) {
	return tc.probe(ctx, t, major)
}

func (tc *Toolchain) probe(ctx context.Context, t Tool, major int) (*ToolInfo, error) {
	// Hold the lock through the probe so concurrent callers run each
	// tool's --version once; probes take milliseconds.
	tc.mu.Lock()
	defer tc.mu.Unlock()
	key := probeKey{t, major}
	if ti, ok := tc.probes[key]; ok {
		return ti, nil
	}
	path, tried, err := tc.lookup(t, major)
	if err != nil {
		return nil, &ToolError{Tool: t, Package: t.Package(), Tried: tried, Err: err}
	}
	ti, err := tc.describe(ctx, t, path)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &ToolError{Tool: t, Package: t.Package(), Tried: []string{path}, Err: err}
	}
	tc.probes[key] = ti
	return ti, nil
}

func (tc *Toolchain) lookup(t Tool, major int) (path string, tried []string, err error) {
	if env := tc.cfg.Getenv(t.EnvVar()); env != "" {
		tried = append(tried, "$"+t.EnvVar()+"="+env)
		p, err := tc.cfg.LookPath(env)
		if err != nil {
			return "", tried, fmt.Errorf("%w: $%s=%s: %v", ErrToolNotFound, t.EnvVar(), env, err)
		}
		return p, tried, nil
	}
	var names []string
	if major > 0 {
		names = append(names, fmt.Sprintf("%s-%d", t, major))
	}
	names = append(names, string(t))
	for _, v := range versions() {
		if n := fmt.Sprintf("%s-%d", t, v); !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	for _, n := range names {
		tried = append(tried, n)
		if p, err := tc.cfg.LookPath(n); err == nil {
			return p, tried, nil
		}
	}
	return "", tried, fmt.Errorf("%w: not on PATH", ErrToolNotFound)
}

// describe runs path --version (and clang -print-targets) and parses the
// output.
func (tc *Toolchain) describe(ctx context.Context, t Tool, path string) (*ToolInfo, error) {
	out, err := tc.output(ctx, path, "--version")
	if err != nil {
		return nil, err
	}
	ti := &ToolInfo{Tool: t, Path: path}
	ti.Banner, _, _ = strings.Cut(strings.TrimSpace(out), "\n")
	ti.Version, err = parseVersion(out)
	if err != nil {
		return nil, fmt.Errorf("%s --version: %w", path, err)
	}
	ti.DefaultTriple = field(out, "Default target:")
	if ti.DefaultTriple == "" {
		ti.DefaultTriple = field(out, "Target:") // clang's spelling
	}
	ti.HostCPU = field(out, "Host CPU:")
	switch t {
	case LLC:
		ti.Targets = parseTargets(out)
	case Clang:
		// clang --version does not list targets; -print-targets does.
		if out, err = tc.output(ctx, path, "-print-targets"); err != nil {
			return nil, err
		}
		ti.Targets = parseTargets(out)
	}
	return ti, nil
}

// output runs a short query of a tool and returns its stdout.
func (tc *Toolchain) output(ctx context.Context, path string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, path, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := tc.cfg.Run(cmd); err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", path, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// run runs tool ti with args in dir and returns its stderr, which holds the
// diagnostics. A failure is a *CompileError carrying them.
func (tc *Toolchain) run(ctx context.Context, ti *ToolInfo, dir, input, triple string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, ti.Path, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := tc.cfg.Run(cmd); err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", &CompileError{Tool: ti.Tool, Input: input, Triple: triple, Args: args, Stderr: stderr.String(), Err: err}
	}
	return stderr.String(), nil
}

// versionRE matches "clang version 14.0.6", "LLVM version 19.1.7" and
// "LLD 14.0.6" wherever a vendor prefix puts them.
var versionRE = regexp.MustCompile(`(?:\bversion|\bLLD)\s+(\d+)\.(\d+)(?:\.(\d+))?`)

func parseVersion(out string) (Version, error) {
	m := versionRE.FindStringSubmatch(out)
	if m == nil {
		line, _, _ := strings.Cut(out, "\n")
		return Version{}, fmt.Errorf("no LLVM version in %q", line)
	}
	var v Version
	v.Major, _ = strconv.Atoi(m[1])
	v.Minor, _ = strconv.Atoi(m[2])
	v.Patch, _ = strconv.Atoi(m[3])
	return v, nil
}

// parseTargets reads the "Registered Targets:" list of llc --version and
// clang -print-targets: lines of "name - description" after the heading.
func parseTargets(out string) []string {
	_, list, ok := strings.Cut(out, "Registered Targets:")
	if !ok {
		return nil
	}
	var ts []string
	for line := range strings.Lines(list) {
		name, _, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok || name == "" {
			continue
		}
		ts = append(ts, name)
	}
	slices.Sort(ts)
	return slices.Compact(ts)
}

// field returns the value after label on its line.
func field(out, label string) string {
	for line := range strings.Lines(out) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), label); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// targetName maps a triple's architecture to the name LLVM registers its
// backend under.
func targetName(triple string) string {
	arch, _, _ := strings.Cut(triple, "-")
	switch arch {
	case "x86_64", "amd64":
		return "x86-64"
	case "i386", "i486", "i586", "i686":
		return "x86"
	case "arm64":
		return "aarch64"
	}
	return arch
}

// sameArch reports whether two triples name the same architecture.
func sameArch(a, b string) bool { return targetName(a) == targetName(b) }

// cacheDir is the bitcode cache directory.
func (tc *Toolchain) cacheDir() (string, error) {
	if tc.cfg.CacheDir != "" {
		return tc.cfg.CacheDir, nil
	}
	// As os.UserCacheDir, but through the injectable Getenv.
	if d := tc.cfg.Getenv("XDG_CACHE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "bcship"), nil
	}
	if h := tc.cfg.Getenv("HOME"); h != "" {
		return filepath.Join(h, ".cache", "bcship"), nil
	}
	return "", errors.New("toolchain: no cache directory: neither $XDG_CACHE_HOME nor $HOME is set")
}
