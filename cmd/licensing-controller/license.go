package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lcorp/licensing-controller/internal/licensing"
)

// licenseCmd is the vendor's side: make a signing key pair and sign payloads.
func licenseCmd(e env) *cobra.Command {
	var out string
	keygen := &cobra.Command{
		Use:   "keygen",
		Short: "Write DIR/license-signing.key (private, 0600) and DIR/license-signing.pub",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pub, priv, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				return fmt.Errorf("generate key: %w", err)
			}
			if err := os.MkdirAll(out, 0o700); err != nil {
				return fmt.Errorf("create %s: %w", out, err)
			}
			keyPath, pubPath := filepath.Join(out, "license-signing.key"), filepath.Join(out, "license-signing.pub")
			// O_EXCL: never overwrite a signing key by accident.
			f, err := os.OpenFile(keyPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return fmt.Errorf("write private key: %w", err)
			}
			if _, err := fmt.Fprintln(f, base64.StdEncoding.EncodeToString(priv)); err != nil {
				f.Close()
				return fmt.Errorf("write private key: %w", err)
			}
			if err := f.Close(); err != nil {
				return fmt.Errorf("write private key: %w", err)
			}
			if err := os.WriteFile(pubPath, []byte(base64.StdEncoding.EncodeToString(pub)+"\n"), 0o644); err != nil {
				return fmt.Errorf("write public key: %w", err)
			}
			fmt.Fprintf(e.stdout, "private key: %s\npublic key:  %s\ntrust it with LC_LICENSE_PUBLIC_KEYS=%s\n", keyPath, pubPath, pubPath)
			return nil
		},
	}
	keygen.Flags().StringVar(&out, "out", "", "directory for the key pair (required)")
	_ = keygen.MarkFlagRequired("out")

	var keyFile, in string
	sign := &cobra.Command{
		Use:   "sign",
		Short: "Sign a licence payload (JSON file) and print the licence document",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			raw, err := os.ReadFile(keyFile)
			if err != nil {
				return fmt.Errorf("read key: %w", err)
			}
			key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(raw)))
			if err != nil || len(key) != ed25519.PrivateKeySize {
				return fmt.Errorf("%s is not a licence-signing private key (license keygen writes one)", keyFile)
			}
			payload, err := os.ReadFile(in)
			if err != nil {
				return fmt.Errorf("read payload: %w", err)
			}
			doc, err := licensing.Sign(payload, ed25519.PrivateKey(key))
			if err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, string(doc))
			return nil
		},
	}
	sign.Flags().StringVar(&keyFile, "key", "", "private key file (required)")
	sign.Flags().StringVar(&in, "in", "", "payload JSON file (required)")
	_ = sign.MarkFlagRequired("key")
	_ = sign.MarkFlagRequired("in")
	c := &cobra.Command{Use: "license", Short: "Issue licences (vendor side)"}
	c.AddCommand(keygen, sign)
	return c
}
