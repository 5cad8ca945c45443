package main

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/bcship/bcship/bundle"
	"github.com/bcship/bcship/toolchain"
	"github.com/spf13/cobra"
)

func newKeygen() *cobra.Command {
	var dir, name string
	cmd := &cobra.Command{
		Use:   "keygen --out DIR [--name NAME]",
		Short: "Create an ed25519 key pair for signing bundles",
		Long: `keygen writes a new ed25519 key pair: DIR/NAME.key, the private key (PKCS#8
PEM, mode 0600), and DIR/NAME.pub, the public key (PKIX PEM). It never
overwrites an existing key. Sign bundles with the .key file; copy the .pub
file into the trust directory of every node that should run them.`,
		Example: `  bcship keygen --out ~/.bcship --name alice`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			pub, priv, err := bundle.GenerateKey()
			if err != nil {
				return err
			}
			if err := bundle.WriteKeyFiles(dir, name, priv); err != nil {
				return err
			}
			base := filepath.Join(dir, name)
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (private, keep it secret) and %s (public)\npublic key %x\n",
				base+bundle.PrivateKeySuffix, base+bundle.PublicKeySuffix, []byte(pub))
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "out", "", "directory for the key files (created if missing)")
	cmd.Flags().StringVar(&name, "name", "bcship", "base name of the key files")
	cmd.MarkFlagRequired("out")
	return cmd
}

func newSign() *cobra.Command {
	var keyFile, out string
	cmd := &cobra.Command{
		Use:   "sign BUNDLE.bcb --key FILE.key [-o OUT.bcb]",
		Short: "Sign a bundle with an ed25519 private key",
		Long: `sign signs a bundle's manifest, which holds the sha256 of every object and
of the bitcode, with a private key from "bcship keygen", replacing any
previous signature. The code hash does not change. The bundle is rewritten
in place unless -o is given. Raw objects cannot be signed: build a bundle.`,
		Example: `  bcship sign chase.bcb --key ~/.bcship/alice.key`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			priv, err := bundle.LoadPrivateKey(keyFile)
			if err != nil {
				return err
			}
			b, err := readBundle(args[0])
			if err != nil {
				return err
			}
			if err := b.Sign(priv); err != nil {
				return err
			}
			data, err := b.Marshal()
			if err != nil {
				return err
			}
			if out == "" {
				out = args[0]
			}
			if err := writeFileAtomic(out, data, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "signed %s: code hash %s, signer %x\n",
				out, b.Hash(), []byte(priv.Public().(ed25519.PublicKey)))
			return nil
		},
	}
	cmd.Flags().StringVar(&keyFile, "key", "", "private key file (NAME.key from bcship keygen)")
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the signed bundle here instead of in place")
	cmd.MarkFlagRequired("key")
	return cmd
}

func newVerify() *cobra.Command {
	var trustDir string
	cmd := &cobra.Command{
		Use:   "verify BUNDLE.bcb --trust DIR",
		Short: "Check a bundle's integrity and that a trusted key signed it",
		Long: `verify checks a bundle as a node does before running it: the file's
checksum, the manifest, the sha256 of every object and of the bitcode, and
the ed25519 signature against the public keys (*.pub) in the trust
directory. It exits with status 1 and says what is wrong when any check
fails.`,
		Example: `  bcship verify chase.bcb --trust /etc/bcship/trusted`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			keys, err := bundle.LoadTrustDir(trustDir)
			if err != nil {
				return fmt.Errorf("reading trusted keys: %w", err)
			}
			if len(keys) == 0 {
				return fmt.Errorf("no trusted keys (*%s files) in %s", bundle.PublicKeySuffix, trustDir)
			}
			b, err := readBundle(args[0])
			if err != nil {
				return fmt.Errorf("%s is damaged or was modified: %w", args[0], err)
			}
			if err := b.Verify(keys); err != nil {
				switch {
				case errors.Is(err, bundle.ErrUnsigned):
					return fmt.Errorf("%s is not signed (bcship sign): %w", args[0], err)
				case errors.Is(err, bundle.ErrUntrusted):
					return fmt.Errorf("%s is signed by a key not in %s: %w", args[0], trustDir, err)
				}
				return fmt.Errorf("%s: the signature does not match the content: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: OK: %s, code hash %s, signed by %x\n",
				args[0], b.Name, b.Hash(), []byte(b.Signature.PublicKey))
			return nil
		},
	}
	cmd.Flags().StringVar(&trustDir, "trust", "", "directory of trusted public keys (*.pub)")
	cmd.MarkFlagRequired("trust")
	return cmd
}

// readBundle reads a bundle file; a raw object is refused, since it has no
// manifest to sign.
func readBundle(path string) (*bundle.Bundle, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) >= 4 && string(data[:4]) == toolchain.ELFMagic {
		return nil, fmt.Errorf("%s is a raw object, not a bundle: bcship build makes one", path)
	}
	return bundle.Read(data)
}
