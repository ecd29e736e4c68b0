package main

import (
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/lenscap/lenscap/cmd/internal/auth"
	"github.com/lenscap/lenscap/cmd/internal/settings"
	"github.com/lenscap/lenscap/device/keyfile"
)

// maxTokenTTL bounds what token create grants.
const maxTokenTTL = 366 * 24 * time.Hour

const tokenUsage = `usage:
  lenscapctl token keygen --out FILE
  lenscapctl token create --key FILE --name NAME [--role view|control] [--ttl 24h] [--aud ID|group:G|*]

keygen makes a fleet signing key: the private key goes to FILE (mode 0600; keep it with the
operator), the public key is printed: give it to the cameras in a PEM file named by their
token_keys setting. create prints a token signed by that key, for a camera (its id, the default
audience is required), a group of cameras (group:NAME) or every camera that trusts the key (*):
view watches, control also changes privacy; it expires after --ttl. Revoke one by its name
(the cameras' token_revoked), or all by replacing the key in token_keys.

`

// runToken is `lenscapctl token keygen|create`: it needs no broker.
func runToken(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("lenscapctl token", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	out := fs.String("out", "", "keygen: `file` for the private key")
	keyFile := fs.String("key", "", "create: the fleet's private key `file` (from keygen)")
	name := fs.String("name", "", "create: `name` of the token's holder, shown in the cameras' logs and state")
	role := fs.String("role", "view", "create: `role`, view or control")
	ttl := fs.Duration("ttl", 24*time.Hour, "create: how long the token is valid (`duration`, at most 366 days)")
	aud := fs.String("aud", "", "create: `audience`: a camera id, group:NAME or *")
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		return settings.Help(tokenUsage, fs)
	}
	verb := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return settings.Help(tokenUsage, fs)
		}
		return fmt.Errorf("token: %w (lenscapctl token -h)", err)
	}
	switch verb {
	case "keygen":
		return keygen(*out, stdout)
	case "create":
		r, err := auth.ParseRole(*role)
		if err != nil {
			return err
		}
		if *ttl <= 0 || *ttl > maxTokenTTL {
			return fmt.Errorf("token create: --ttl %s: want more than 0 and at most 366 days", *ttl)
		}
		if *keyFile == "" || *aud == "" {
			return errors.New("token create: give --key FILE and --aud (a camera id, group:NAME or *)")
		}
		key, err := auth.ReadPrivateKey(*keyFile)
		if err != nil {
			return err
		}
		tok, err := auth.Mint(key, auth.Grant{Name: *name, Role: r, Audience: []string{*aud}, TTL: *ttl}, time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, tok)
		return nil
	}
	return fmt.Errorf("token: unknown command %q: want keygen or create (lenscapctl token -h)", verb)
}

// keygen writes a new private key to out (never over an existing file) and prints its public
// key.
func keygen(out string, stdout io.Writer) error {
	if out == "" {
		return errors.New("token keygen: give --out FILE for the private key")
	}
	if _, err := os.Stat(out); err == nil {
		return fmt.Errorf("token keygen: %s exists: not replacing a key (that would revoke its tokens)", out)
	}
	k, _, err := keyfile.LoadOrCreate(out)
	if err != nil {
		return fmt.Errorf("token keygen: %w", err)
	}
	pub, err := auth.PublicKeyPEM(k.Public().(ed25519.PublicKey))
	if err != nil {
		return err
	}
	_, err = stdout.Write(pub)
	return err
}
