package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/bcship/bcship/toolchain"
	"github.com/spf13/cobra"
)

func newBuild(logger *slog.Logger) *cobra.Command {
	var (
		triples   []string
		opt, out  string
		name      string
		includes  []string
		defines   []string
		noBitcode bool
	)
	cmd := &cobra.Command{
		Use:   "build KERNEL.c [MORE.c ...]",
		Short: "Compile a C kernel for several target triples into a bundle",
		Long: `build compiles a freestanding C kernel with clang for every target triple
into one relocatable object per triple (several sources are linked with
ld.lld -r), adds LLVM bitcode so nodes without a matching object can compile
it themselves, and writes a bundle (.bcb). Entry points are the functions
marked BC_ENTRY; they must be the same for every triple.

bcship.h is built into bcship, so #include "bcship.h" works from any
directory. clang is $BCSHIP_CLANG, else clang, clang-19, ..., clang-14 on
PATH (likewise $BCSHIP_LD_LLD and $BCSHIP_LLVM_LINK). With SOURCE_DATE_EPOCH
set, the bundle's creation time, and so its code hash, is reproducible.

Compiler diagnostics are clang's own, with file:line.`,
		Example: `  bcship build chase.c -t x86_64-linux-gnu,aarch64-linux-gnu -O2 -o chase.bcb
  bcship build a.c b.c -t x86_64-linux-gnu,aarch64-linux-gnu,riscv64-linux-gnu --name ab -o ab.bcb`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tc := toolchain.New(toolchain.Config{Logger: logger})
			b, err := tc.Build(cmd.Context(), toolchain.BuildOptions{
				Sources: args, Triples: triples, Opt: opt, Name: name,
				IncludeDirs: includes, Defines: defines, NoBitcode: noBitcode,
				Stderr: cmd.ErrOrStderr(),
			})
			if err != nil {
				return err
			}
			data, err := b.Marshal()
			if err != nil {
				return err
			}
			if out == "" {
				out = b.Name + ".bcb"
			}
			if err := writeFileAtomic(out, data, 0o644); err != nil {
				return err
			}
			var ts []string
			for _, o := range b.Objects {
				ts = append(ts, o.Triple)
			}
			bc := "no bitcode"
			if b.Manifest.Bitcode != nil {
				bc = fmt.Sprintf("bitcode %d bytes", b.Manifest.Bitcode.Size)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%d bytes): %s, entries %s, objects for %s, %s, LLVM %d, code hash %s\n",
				out, len(data), b.Name, strings.Join(b.Entries, " "), strings.Join(ts, " "), bc, b.LLVMVersion, b.Hash())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVarP(&triples, "target", "t", toolchain.DefaultTriples(), "target triples, comma separated")
	f.StringVarP(&opt, "opt", "O", "2", "optimization level: 0, 1, 2, 3, s or z (-O2, -Os)")
	f.StringVarP(&out, "output", "o", "", "bundle to write (default NAME.bcb)")
	f.StringVar(&name, "name", "", "kernel name in the manifest (default: first source's base name)")
	f.StringArrayVarP(&includes, "include", "I", nil, "add an include directory (repeatable)")
	f.StringArrayVarP(&defines, "define", "D", nil, "define a macro, NAME or NAME=VALUE (repeatable)")
	f.BoolVar(&noBitcode, "no-bitcode", false, "leave the LLVM bitcode out")
	return cmd
}

// writeFileAtomic writes data to path through a temporary file and a
// rename, so an interrupted write never leaves a half bundle behind.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".bcship-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // no-op after the rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
