package toolchain

import (
	"context"
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

func TestParseVersion(t *testing.T) {
	for _, c := range []struct {
		out  string
		want Version
	}{
		{"Debian clang version 14.0.6\nTarget: x86_64-pc-linux-gnu\n", Version{14, 0, 6}},
		{"Ubuntu clang version 18.1.3 (1ubuntu1)\n", Version{18, 1, 3}},
		{"clang version 19.1.7 (https://github.com/llvm/llvm-project cd708029)\n", Version{19, 1, 7}},
		{"Debian LLVM version 14.0.6\n  Optimized build.\n", Version{14, 0, 6}},
		{"LLVM (http://llvm.org/):\n  LLVM version 16.0.6\n", Version{16, 0, 6}},
		{"Debian LLD 14.0.6 (compatible with GNU linkers)\n", Version{14, 0, 6}},
		{"LLD 19.1.0 (compatible with GNU linkers)\n", Version{19, 1, 0}},
		{"llvm-objcopy, compatible with GNU objcopy\nLLVM (http://llvm.org/):\n  LLVM version 17.0.1git\n", Version{17, 0, 1}},
	} {
		got, err := parseVersion(c.out)
		if err != nil || got != c.want {
			t.Errorf("parseVersion(%q) = %v, %v; want %v", c.out, got, err, c.want)
		}
	}
	if _, err := parseVersion("GNU ld (GNU Binutils) 2.40\n"); err == nil {
		t.Error("parseVersion accepted GNU ld")
	}
}

const llcVersion = `Debian LLVM version 14.0.6
  Optimized build.
  Default target: x86_64-pc-linux-gnu
  Host CPU: znver3

  Registered Targets:
    aarch64    - AArch64 (little endian)
    riscv64    - 64-bit RISC-V
    x86        - 32-bit X86: Pentium-Pro and above
    x86-64     - 64-bit X86: EM64T and AMD64
`

func TestParseTargets(t *testing.T) {
	got := parseTargets(llcVersion)
	if want := []string{"aarch64", "riscv64", "x86", "x86-64"}; !slices.Equal(got, want) {
		t.Fatalf("targets %v, want %v", got, want)
	}
	ti := &ToolInfo{Targets: got}
	for triple, want := range map[string]bool{
		"x86_64-linux-gnu": true, "aarch64-linux-gnu": true, "arm64-apple-darwin": true,
		"riscv64-linux-gnu": true, "i686-linux-gnu": true, "loongarch64-linux-gnu": false,
	} {
		if ti.Supports(triple) != want {
			t.Errorf("Supports(%s) = %v", triple, !want)
		}
	}
	if f := field(llcVersion, "Host CPU:"); f != "znver3" {
		t.Errorf("host CPU %q", f)
	}
}

// fakeTools is a Config whose PATH holds only the given names and whose
// tools answer --version with canned output, so discovery is tested
// without any LLVM installed.
func fakeTools(env map[string]string, onPath ...string) (Config, *[]string) {
	var ran []string
	return Config{
		Getenv: func(k string) string { return env[k] },
		LookPath: func(name string) (string, error) {
			if slices.Contains(onPath, name) {
				return "/fake/" + name, nil
			}
			return "", exec.ErrNotFound
		},
		Run: func(cmd *exec.Cmd) error {
			ran = append(ran, cmd.Path+" "+strings.Join(cmd.Args[1:], " "))
			ver := "17.0.6"
			if i := strings.LastIndexByte(cmd.Path, '-'); i >= 0 {
				ver = cmd.Path[i+1:] + ".0.1"
			}
			cmd.Stdout.Write([]byte("Debian LLVM version " + ver + "\n  Default target: x86_64-pc-linux-gnu\n  Host CPU: znver3\n\n  Registered Targets:\n    x86-64 - 64-bit X86\n"))
			return nil
		},
		CacheDir: "/nonexistent",
	}, &ran
}

func TestMissingTool(t *testing.T) {
	cfg, _ := fakeTools(nil)
	tc := New(cfg)
	for _, tool := range Tools() {
		_, err := tc.Tool(context.Background(), tool)
		var te *ToolError
		if !errors.As(err, &te) || !errors.Is(err, ErrToolNotFound) {
			t.Fatalf("%s: got %v, want a *ToolError matching ErrToolNotFound", tool, err)
		}
		msg := err.Error()
		if !strings.Contains(msg, "apt-get install clang lld llvm") || !strings.Contains(msg, "Debian package "+tool.Package()) {
			t.Errorf("%s: message does not say what to install: %s", tool, msg)
		}
		if !slices.Contains(te.Tried, string(tool)+"-14") {
			t.Errorf("%s: tried %v, want the versioned names too", tool, te.Tried)
		}
		t.Logf("%s: %v", tool, err)
	}
	want := map[Tool]string{Clang: "clang", LLC: "llvm", LLD: "lld", Objcopy: "llvm", LLVMLink: "llvm"}
	for tool, pkg := range want {
		if tool.Package() != pkg {
			t.Errorf("%s.Package() = %s, want %s", tool, tool.Package(), pkg)
		}
	}
}

func TestFindEnvOverride(t *testing.T) {
	// $BCSHIP_CLANG wins over PATH, and a wrong one is an error naming it.
	cfg, _ := fakeTools(map[string]string{"BCSHIP_CLANG": "clang-16"}, "clang", "clang-16")
	ti, err := New(cfg).Tool(context.Background(), Clang)
	if err != nil || ti.Path != "/fake/clang-16" || ti.Version.Major != 16 {
		t.Fatalf("got %+v, %v; want clang-16", ti, err)
	}
	cfg, _ = fakeTools(map[string]string{"BCSHIP_LLC": "/opt/llc"}, "llc")
	_, err = New(cfg).Tool(context.Background(), LLC)
	if !errors.Is(err, ErrToolNotFound) || !strings.Contains(err.Error(), "$BCSHIP_LLC=/opt/llc") {
		t.Fatalf("got %v, want an error naming $BCSHIP_LLC", err)
	}
	if LLD.EnvVar() != "BCSHIP_LD_LLD" || Objcopy.EnvVar() != "BCSHIP_LLVM_OBJCOPY" {
		t.Errorf("env vars %s %s", LLD.EnvVar(), Objcopy.EnvVar())
	}
}

func TestFindVersionedAndCached(t *testing.T) {
	// Only versioned names installed: the newest is found, and probed once.
	cfg, ran := fakeTools(nil, "llc-15", "llc-18", "llvm-link-15", "llvm-link-18")
	tc := New(cfg)
	for range 3 {
		ti, err := tc.Tool(context.Background(), LLC)
		if err != nil || ti.Version.Major != 18 || ti.HostCPU != "znver3" || !ti.Supports("x86_64-linux-gnu") {
			t.Fatalf("got %+v, %v; want llc-18", ti, err)
		}
	}
	if len(*ran) != 1 {
		t.Fatalf("llc probed %d times, want once: %v", len(*ran), *ran)
	}
	// A companion of clang 15 prefers llvm-link-15 over the newest.
	ti, err := tc.companion(context.Background(), LLVMLink, 15)
	if err != nil || ti.Path != "/fake/llvm-link-15" {
		t.Fatalf("companion: %+v, %v", ti, err)
	}
}

// TestFindReal reports what this machine has; it fails only if a found
// tool cannot be probed.
func TestFindReal(t *testing.T) {
	tc := New(Config{})
	for _, tool := range Tools() {
		ti, err := tc.Tool(context.Background(), tool)
		var te *ToolError
		if errors.As(err, &te) && errors.Is(err, ErrToolNotFound) {
			t.Logf("%-12s missing (Debian package %s)", tool, te.Package)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%-12s %s: LLVM %v, %d targets, host %s %s", tool, ti.Path, ti.Version, len(ti.Targets), ti.DefaultTriple, ti.HostCPU)
	}
}
