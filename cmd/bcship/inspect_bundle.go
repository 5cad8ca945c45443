package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/bcship/bcship/bundle"
	"github.com/bcship/bcship/toolchain"
)

// inspectBundle prints a bundle's manifest, then describes each object and,
// if compile, the object the local llc makes from its bitcode.
func inspectBundle(ctx context.Context, w io.Writer, logger *slog.Logger, name string, data []byte, compile bool) error {
	b, err := bundle.Read(data)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	fmt.Fprintf(w, "%s: bcship bundle, format %d, %d bytes\n", name, b.Format, len(data))
	fmt.Fprintf(w, "  name:       %s\n", b.Name)
	fmt.Fprintf(w, "  code hash:  %s\n", b.Hash())
	fmt.Fprintf(w, "  entries:    %v\n", b.Entries)
	llvm := "unknown"
	if b.LLVMVersion > 0 {
		llvm = fmt.Sprint(b.LLVMVersion)
	}
	fmt.Fprintf(w, "  llvm:       %s\n", llvm)
	fmt.Fprintf(w, "  created:    %s (%d)\n", b.Created.UTC().Format(time.RFC3339), b.Created.Unix())
	if b.Signature != nil {
		fmt.Fprintf(w, "  signer:     ed25519 %x (not checked here; use bcship verify)\n", []byte(b.Signature.PublicKey))
	} else {
		fmt.Fprintf(w, "  signer:     unsigned\n")
	}
	fmt.Fprintf(w, "  objects:    %d\n", len(b.Objects))
	for _, o := range b.Objects {
		fmt.Fprintf(w, "    %-24s %8d bytes  sha256 %s\n", o.Triple, o.Size, o.SHA256)
	}
	bc, hasBC := b.Bitcode()
	if hasBC {
		fmt.Fprintf(w, "  bitcode:    %d bytes  sha256 %s\n", b.Manifest.Bitcode.Size, b.Manifest.Bitcode.SHA256)
	} else {
		fmt.Fprintf(w, "  bitcode:    none\n")
	}

	for _, o := range b.Objects {
		obj, _ := b.Object(o.Triple)
		describe(w, "object "+o.Triple, obj, b.Entries)
	}
	if !hasBC || !compile {
		return nil
	}
	host, ok := toolchain.HostTriple()
	if !ok {
		fmt.Fprintf(w, "  bitcode:\n    loadable:   no: this machine has no known triple\n")
		return nil
	}
	tc := toolchain.New(toolchain.Config{Logger: logger})
	obj, err := tc.CompileBitcode(ctx, bc, host, b.LLVMVersion)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fmt.Fprintf(w, "  bitcode for %s:\n    loadable:   no: %v\n", host, err)
		return nil
	}
	how := "llc"
	if llc, err := tc.Tool(ctx, toolchain.LLC); err == nil {
		how = fmt.Sprintf("%s (LLVM %v)", llc.Path, llc.Version)
	}
	if tc.Stats().CacheHits > 0 {
		how += ", from the cache"
	}
	describe(w, fmt.Sprintf("bitcode compiled for %s by %s", host, how), obj, b.Entries)
	return nil
}

// describe prints inspectObject's report on obj under title, indented,
// and flags entries that differ from the manifest's. An object this loader
// cannot parse (another machine) is reported, not an error.
func describe(w io.Writer, title string, obj []byte, entries []string) {
	var buf bytes.Buffer
	if err := inspectObject(&buf, title, obj); err != nil {
		fmt.Fprintf(w, "  %s: %d bytes\n", title, len(obj))
		if es, err := toolchain.Entries(obj); err == nil {
			fmt.Fprintf(w, "    entries:    %v\n", es)
		}
		fmt.Fprintf(w, "    loadable:   no: %s\n", strings.TrimPrefix(err.Error(), title+": "))
		return
	}
	for line := range strings.Lines(buf.String()) {
		io.WriteString(w, "  "+line)
	}
	if got, err := toolchain.Entries(obj); err == nil && !slices.Equal(got, entries) {
		fmt.Fprintf(w, "    WARNING:    entries %v differ from the manifest's %v\n", got, entries)
	}
}
