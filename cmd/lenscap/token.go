package main

import (
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/lenscap/lenscap/cmd/internal/auth"
	"github.com/lenscap/lenscap/cmd/internal/settings"
)

// maxTokenTTL bounds what token create grants: a token outlives nothing it should not.
const maxTokenTTL = 366 * 24 * time.Hour

// runToken is `lenscap token show|create [flags]`, with the daemon's configuration (its
// state directory holds the camera's key and owner credential; run it as the daemon's user).
func runToken(args []string, getenv func(string) string, out io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			return tokenUsageError()
		}
		return errors.New("token: say show or create (lenscap token -h)")
	}
	switch args[0] {
	case "show":
		cfg, err := loadCommandConfig(hostPlatform(), tokenUsage, args[1:], getenv, nil)
		if err != nil {
			return err
		}
		tok, err := ownerCredential(cfg, time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintln(out, tok)
		return nil
	case "create":
		return runTokenCreate(args[1:], getenv, out)
	}
	return fmt.Errorf("token: unknown command %q: want show or create (lenscap token -h)", args[0])
}

// runTokenCreate mints a token with the camera's key.
func runTokenCreate(args []string, getenv func(string) string, out io.Writer) error {
	var role, name, aud string
	var ttl time.Duration
	cfg, err := loadCommandConfig(hostPlatform(), tokenUsage, args, getenv, func(fs *flag.FlagSet) {
		fs.StringVar(&role, "role", "view", "`role` of the token: view (watch, read the state) or control (also change privacy)")
		fs.StringVar(&name, "name", "", "`name` of its holder, shown in logs and in who changed what (required)")
		fs.DurationVar(&ttl, "ttl", 24*time.Hour, "how long the token is valid (`duration`, at most 366 days)")
		fs.StringVar(&aud, "aud", "", "`audience`: this camera's id (the default), group:NAME or * (every camera that trusts the key)")
	})
	if err != nil {
		return err
	}
	r, err := auth.ParseRole(role)
	if err != nil {
		return err
	}
	if ttl <= 0 || ttl > maxTokenTTL {
		return fmt.Errorf("token create: --ttl %s: want more than 0 and at most 366 days", ttl)
	}
	if aud == "" {
		aud = cfg.ID
	}
	key, err := cameraKeyFor(cfg)
	if err != nil {
		return err
	}
	tok, err := auth.Mint(key, auth.Grant{Name: name, Role: r, Audience: []string{aud}, TTL: ttl}, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintln(out, tok)
	return nil
}

// ownerCredential returns the camera's owner credential (made the first time on the simulated
// board; by the daemon's first start on a real one).
func ownerCredential(cfg Config, now time.Time) (string, error) {
	key, err := cameraKeyFor(cfg)
	if err != nil {
		return "", err
	}
	return auth.Owner(cfg.StateDir, cfg.ID, key, now)
}

// cameraKeyFor returns the camera's key for the token commands. On a real board only the
// daemon makes it, as its own user: a key made by `sudo lenscap token ...` before the service
// ever ran would belong to root, and the service could not read it.
func cameraKeyFor(cfg Config) (ed25519.PrivateKey, error) {
	key, _, err := auth.CameraKey(cfg.StateDir, cfg.Board == boardSim)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("token: no camera key in %s yet: start the service once (it makes the key and the owner credential), then run this as root or as its user", cfg.StateDir)
	}
	return key, err
}

func tokenUsageError() error {
	return &settings.HelpError{Text: tokenUsage(defaultConfig(hostPlatform()).Board)}
}

// tokenUsage is the head of `lenscap token -h`.
func tokenUsage(board string) string {
	return `usage: lenscap token show [flags]
       lenscap token create --name NAME [--role view|control] [--ttl 24h] [--aud ID|group:G|*] [flags]

show prints the camera's owner credential (a control token without expiry), making the camera's
signing key and the credential in the state directory the first time (a real board makes them
at its first start). create prints a new token signed by the camera's key: give it to whoever may
watch (view) or also change privacy (control); it expires after --ttl. Open the viewer page as
http://CAMERA:8080/#token=TOKEN, or send it as "Authorization: Bearer TOKEN".
Revoke a token by its name (token_revoked), or all of them by deleting the key (auth.key in the
state directory) and restarting: the owner credential is then made anew.

` + configHelp(board)
}

// newVerifier is who may use the camera: its own key (made at first start on a real board; on
// the simulated board, used when it exists and the listener reaches beyond loopback), the
// fleet's keys, the static token and the revoked names.
func newVerifier(cfg Config, simulated bool, log *slog.Logger) (*auth.Verifier, error) {
	keys, err := auth.ReadPublicKeys(cfg.TokenKeys)
	if err != nil {
		return nil, err
	}
	var own ed25519.PublicKey
	if !simulated || !isLoopback(cfg.Listen) {
		key, created, err := auth.CameraKey(cfg.StateDir, !simulated)
		switch {
		case err == nil:
			if _, err := auth.Owner(cfg.StateDir, cfg.ID, key, time.Now()); err != nil {
				return nil, err
			}
			if created {
				log.Info("owner credential created: lenscap token show prints it", "state_dir", cfg.StateDir)
			}
			own = key.Public().(ed25519.PublicKey)
		case !simulated:
			return nil, err
		}
	}
	return auth.NewVerifier(auth.VerifierConfig{OwnKey: own, Keys: keys, Static: cfg.Token, ID: cfg.ID,
		Groups: cfg.Groups, Revoked: cfg.TokenRevoked}), nil
}

// listenPolicy refuses a listener beyond loopback that anyone could use: with no credential
// configured, only this machine may connect.
func listenPolicy(listen string, v *auth.Verifier) error {
	if v.Required() || isLoopback(listen) {
		return nil
	}
	return fmt.Errorf("listen %s reaches beyond this machine and no credential is configured: "+
		"make the owner credential with `lenscap token show` (same --state-dir), or set token or token_keys, "+
		"or listen on 127.0.0.1", listen)
}

// isLoopback reports whether a listen address is on loopback only (127.0.0.0/8, ::1,
// localhost); an empty host is every interface.
func isLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
