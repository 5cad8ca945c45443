package main

import (
	"os/exec"
	"strings"
	"testing"
)

// forbidden are import-path prefixes that must never reach bcshipd: the
// compiler driver (it execs clang/llc; a firmware image has neither), the
// CLI and its flag library, plotting, and HTTP (health is hand-rolled to
// stay small).
var forbidden = []string{
	"github.com/bcship/bcship/toolchain",
	"github.com/bcship/bcship/cmd/bcship",
	"github.com/spf13/cobra",
	"github.com/spf13/pflag",
	"gonum.org/",
	"net/http",
	"os/exec",
}

// TestImportGraph fails when a forbidden package creeps into bcshipd's
// dependencies, for either target architecture, and names the importer.
func TestImportGraph(t *testing.T) {
	goCmd := goTool(t)
	for _, goarch := range []string{"amd64", "arm64"} {
		cmd := exec.Command(goCmd, "list", "-deps", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, ".")
		cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps (GOARCH=%s): %v\n%s", goarch, err, stderrOf(err))
		}
		importers := map[string][]string{}
		for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 {
				continue
			}
			importers[f[0]] = importers[f[0]] // the package itself
			for _, imp := range f[1:] {
				importers[imp] = append(importers[imp], f[0])
			}
		}
		if _, ok := importers["github.com/bcship/bcship"]; !ok {
			t.Fatalf("GOARCH=%s: the node runtime is not in the graph; is this list right?\n%s", goarch, out)
		}
		for pkg, by := range importers {
			for _, bad := range forbidden {
				if pkg == bad || strings.HasPrefix(pkg, strings.TrimSuffix(bad, "/")+"/") || (strings.HasSuffix(bad, "/") && strings.HasPrefix(pkg, bad)) {
					t.Errorf("GOARCH=%s: bcshipd depends on %s (imported by %v); keep it out of the node binary", goarch, pkg, by)
				}
			}
		}
	}
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}
