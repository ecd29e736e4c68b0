package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/lenscap/lenscap/cmd/internal/settings"
	"github.com/lenscap/lenscap/mqtt"
)

// Environment variables for the viewer's credential: the token, or a file holding it.
const (
	envViewToken     = "LENSCAPCTL_TOKEN"
	envViewTokenFile = "LENSCAPCTL_TOKEN_FILE"
)

// maxTokenFile bounds the credential file read.
const maxTokenFile = 64 << 10

const viewUsage = `usage:
  lenscapctl [flags] view --device ID [--for DURATION] [--json] [--relay] [--account A] [--ice-ip NETS]

view watches a camera through the fleet's MQTT broker, as a headless WebRTC viewer: it asks the
camera for a session (a new random id) with a credential, answers every offer (the first, each
cut and lift, ICE restarts) and reads every track. It prints one event per line:

  hello device=ID account=A session=S
  state {...}                                  the camera's privacy state
  config servers=URL,...                       the ICE servers the camera gave (STUN, TURN)
  offer video=sendonly|inactive|absent audio=... restart=BOOL n=N
  ice STATE                                    checking, disconnected, failed, closed
  connected pair=host|srflx|prflx|relay local=ADDR remote=ADDR local-type=T remote-type=T protocol=P
  track KIND codec=C ssrc=N add=N              a track began (add 2: after a lift)
  first-frame KIND keyframe=BOOL after=MS since-offer=MS add=N
                                               a track's first frame: after the hello, after the
                                               offer that began sending it (-1: none)
  stats KIND packets=N frames=N keyframes=N    every second while packets flow, and at the end
  ended KIND add=N                             a track stopped (a cut)
  error TEXT
  bye                                          the camera ended the session
  summary KIND packets=N frames=N keyframes=N first-frame-ms=MS adds=N first-keyframes=BOOL,...

With --json each line is a JSON object: "event", "kind" (events of one kind), the fields under
the names above (first-keyframes and servers as arrays, first-frame-ms and since-offer null
when none, state as an object, error's text as "error", ice's as "state") and "t_ms"
(milliseconds since the hello). keyframe, keyframes and first-keyframes are video's only
(every audio frame decodes alone).

The credential (a view or control token: lenscapctl token create, or the camera's own) is read
from $` + envViewToken + `, or the file named by --token-file or $` + envViewTokenFile + `;
--token works too but shows in ps. The account in the session's topics is the broker URL's
user name (--account when the broker knows the viewer by a certificate).
--timeout bounds the wait for the broker and for the camera's first answer to the hello.
It exits 0 when the session ended normally (--for elapsed, Ctrl-C, the camera's bye), and 1 when
the camera refused the session or it failed (the reason on stderr).

`

// viewInvocation is a parsed view command line.
type viewInvocation struct {
	cfg       config
	device    string
	token     string
	duration  time.Duration // 0: until Ctrl-C or the camera's bye
	json      bool
	relay     bool
	account   string
	nets      []*net.IPNet
	noneToken bool // no credential was given: hello without one
}

// viewFlags are view's own flags, besides the broker's.
type viewFlags struct {
	device, token, tokenFile, account, iceIP string
	duration                                 time.Duration
	json, relay                              bool
}

func (f *viewFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&f.device, "device", "", "the camera's `id`")
	fs.StringVar(&f.token, "token", "", "the credential (`token`); it shows in ps: prefer $"+envViewToken+" or --token-file")
	fs.StringVar(&f.tokenFile, "token-file", "", "`file` holding the credential (also $"+envViewTokenFile+")")
	fs.StringVar(&f.account, "account", "", "the viewer's broker `account` in the session's topics (default: the broker URL's user)")
	fs.StringVar(&f.iceIP, "ice-ip", "", "gather host candidates only on these `networks` (127.0.0.1/8,192.168.1.0/24; default: all)")
	fs.DurationVar(&f.duration, "for", 0, "watch for this `duration`, then say bye (default: until Ctrl-C or the camera's bye)")
	fs.BoolVar(&f.json, "json", false, "print JSON objects, one per line")
	fs.BoolVar(&f.relay, "relay", false, "connect through the camera's TURN servers only (iceTransportPolicy relay)")
}

// parseView parses args when their command is view: isView is false for another command (or
// none), which parseArgs then reads. Flags may come before or after the command.
func parseView(args []string, getenv func(string) string) (inv *viewInvocation, isView bool, err error) {
	fs := flag.NewFlagSet("lenscapctl view", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cl := configSettings().Flags(fs)
	var vf viewFlags
	vf.add(fs)
	words, err := interspersed(fs, args)
	if len(words) == 0 || words[0] != "view" {
		return nil, false, nil
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		return nil, true, settings.Help(viewUsage, fs)
	case err != nil:
		return nil, true, fmt.Errorf("view: %w (lenscapctl view -h)", err)
	case len(words) > 1:
		return nil, true, fmt.Errorf("view: unexpected %q (lenscapctl view -h)", words[1])
	}
	cfg, err := loadConfig(cl, getenv)
	if err != nil {
		return nil, true, err
	}
	inv, err = vf.invocation(cfg, getenv)
	return inv, true, err
}

// interspersed parses the flags of args wherever they are and returns the other words, those
// before an error included.
func interspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var words []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			return words, err
		}
		rest = fs.Args()
		if len(rest) == 0 {
			return words, nil
		}
		words = append(words, rest[0])
		rest = rest[1:]
	}
}

// invocation checks the flags and finds the credential and the account.
func (f *viewFlags) invocation(cfg config, getenv func(string) string) (*viewInvocation, error) {
	inv := &viewInvocation{cfg: cfg, device: f.device, duration: f.duration, json: f.json, relay: f.relay}
	if f.device == "" {
		return nil, errors.New("view: say which camera: --device ID")
	}
	if err := mqtt.ValidID(f.device); err != nil {
		return nil, fmt.Errorf("view: --device: %w", err)
	}
	if f.duration < 0 {
		return nil, errors.New("view: --for: want a positive duration")
	}
	var err error
	if inv.nets, err = parseNets(f.iceIP); err != nil {
		return nil, fmt.Errorf("view: --ice-ip: %w", err)
	}
	if inv.account, err = viewAccount(cfg.MQTT, f.account); err != nil {
		return nil, err
	}
	inv.token, err = viewToken(f.token, f.tokenFile, getenv)
	if err != nil {
		return nil, err
	}
	inv.noneToken = inv.token == ""
	return inv, nil
}

// viewAccount is the account of the session's topics: --account, else the broker URL's user.
func viewAccount(brokerURL, flagAccount string) (string, error) {
	account := flagAccount
	if account == "" {
		if u, err := mqtt.ParseBrokerURL(brokerURL); err == nil && u.User != nil {
			account = u.User.Username()
		}
	}
	if account == "" {
		return "", errors.New("view: no account for the session's topics: put the user in the broker URL (mqtt://USER:PASSWORD@host) or give --account")
	}
	if !validSessionName(account) {
		return "", fmt.Errorf("view: account %q: want 1 to 64 of A-Z a-z 0-9 . _ - (give --account)", account)
	}
	return account, nil
}

// viewToken finds the credential: --token, --token-file, $LENSCAPCTL_TOKEN, then the file
// named by $LENSCAPCTL_TOKEN_FILE. None is "" (the camera decides).
func viewToken(flagToken, flagFile string, getenv func(string) string) (string, error) {
	switch {
	case flagToken != "" && flagFile != "":
		return "", errors.New("view: give --token or --token-file, not both")
	case flagToken != "":
		return strings.TrimSpace(flagToken), nil
	case flagFile != "":
		return readTokenFile(flagFile, "--token-file")
	case getenv(envViewToken) != "":
		return strings.TrimSpace(getenv(envViewToken)), nil
	case getenv(envViewTokenFile) != "":
		return readTokenFile(getenv(envViewTokenFile), envViewTokenFile)
	}
	return "", nil
}

// readTokenFile reads a credential file: its content, trimmed. Errors never show the content.
func readTokenFile(path, source string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("view: %s: %w", source, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTokenFile+1))
	if err != nil {
		return "", fmt.Errorf("view: %s: %w", source, err)
	}
	if len(b) > maxTokenFile {
		return "", fmt.Errorf("view: %s: %s is larger than %d bytes: not a token", source, path, maxTokenFile)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("view: %s: %s is empty", source, path)
	}
	return tok, nil
}

// runView is `lenscapctl view`, a headless WebRTC viewer (pion) that watches one camera
// through the fleet's MQTT broker (issue 12's MQTT signalling contract), and
// prints what it receives, one event per line, for operators and for tests:
//
//	hello device=ID account=A session=S          the session was asked for
//	state {...}                                  the camera's privacy state (at start, on each change)
//	config servers=URL,...                       the ICE servers the camera gave the session
//	offer video=sendonly|inactive|absent audio=... restart=BOOL n=N
//	                                             an offer (first, cut, lift, ICE restart): whether
//	                                             each kind's track is sent; restart: new ICE credentials
//	ice STATE                                    the ICE connection state, other than connected
//	connected pair=host|srflx|prflx|relay local=ADDR remote=ADDR local-type=T remote-type=T protocol=udp|tcp
//	                                             the selected candidate pair, on each connect or ICE restart
//	track KIND codec=C ssrc=N add=N              a track began (add: 1, then 2 after a lift, ...)
//	first-frame KIND keyframe=BOOL after=MS since-offer=MS add=N
//	                                             a track's first complete frame; after: since the hello,
//	                                             since-offer: since the offer that began sending it (-1: none)
//	stats KIND packets=N frames=N keyframes=N    every second while packets flow, and at the end
//	ended KIND add=N                             a track stopped (removed by a cut)
//	error TEXT                                   an error from the camera, or the viewer's own
//	bye                                          the camera ended the session
//	summary KIND packets=N frames=N keyframes=N first-frame-ms=MS adds=N first-keyframes=BOOL,...
//	                                             at the end, per kind: first-frame-ms is the hello to
//	                                             the first frame (-1: none); first-keyframes says, for
//	                                             each track added, whether its first frame was a keyframe
//
// With --json each line is a JSON object: "event" (the name above), "kind" for the events of
// one kind, the fields above under the same names (numbers, booleans; first-keyframes and
// servers as arrays; first-frame-ms and since-offer null when none; state as the camera's
// object; error's text as "error"; ice's as "state"), and "t_ms", milliseconds since the
// hello. keyframe, keyframes and first-keyframes are video's only. The names are stable:
// tests and scripts read them.
func runView(ctx context.Context, inv *viewInvocation, stdout, stderr io.Writer) error {
	if inv.noneToken {
		fmt.Fprintf(stderr, "view: no credential ($%s, --token-file): asking without one\n", envViewToken)
	}
	api, err := newViewAPI(inv.nets)
	if err != nil {
		return err
	}
	topics, err := newSessionTopics(inv.cfg.TopicPrefix, inv.device, inv.account, randomHex(16))
	if err != nil {
		return fmt.Errorf("view: %w", err)
	}
	link, err := dialSignal(ctx, inv.cfg, topics)
	if err != nil {
		if ctx.Err() != nil {
			return nil // Ctrl-C before the session began
		}
		return fmt.Errorf("view: %w", err)
	}
	v := newViewer(inv, api, link, stdout)
	return v.run(ctx)
}
