package mqtt

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// BridgePahoLogs sends paho's logs to log, which the caller has given its component
// (log.With("component", "paho")). paho's levels are not ours:
//
//   - CRITICAL becomes an error (a ping unanswered, a message lost from the store);
//   - ERROR becomes a warning: paho reports every lost or refused connection as an error, and
//     the Client logs those itself with what it does about them;
//   - WARN becomes debug: paho warns about its own bookkeeping in the normal course of things
//     ("memorystore del: message 1 not found" as the Client connects, "memorystore wiped",
//     a DISCONNECT not sent in time at shutdown); what goes wrong reaches ERROR or the Client;
//   - DEBUG stays debug, and is only installed when log enables debug (it is heavy).
//
// paho's component tag ("[store]", "[net]") becomes the attribute paho=store. paho's loggers
// are package variables shared by every paho client of the process: call it once, from main,
// before any client runs.
func BridgePahoLogs(log *slog.Logger) {
	critical, errs, warn, debug := pahoLoggers(log)
	paho.CRITICAL, paho.ERROR, paho.WARN = critical, errs, warn
	if debug != nil {
		paho.DEBUG = debug
	}
}

// pahoLoggers are the loggers BridgePahoLogs installs as paho's CRITICAL, ERROR, WARN and
// DEBUG; debug is nil when log does not enable debug.
func pahoLoggers(log *slog.Logger) (critical, errs, warn, debug paho.Logger) {
	critical = pahoLogger{log, slog.LevelError}
	errs = pahoLogger{log, slog.LevelWarn}
	warn = pahoLogger{log, slog.LevelDebug}
	if log.Enabled(context.Background(), slog.LevelDebug) {
		debug = pahoLogger{log, slog.LevelDebug}
	}
	return critical, errs, warn, debug
}

type pahoLogger struct {
	log   *slog.Logger
	level slog.Level
}

func (l pahoLogger) Println(v ...any) { l.emit(fmt.Sprintln(v...)) }

func (l pahoLogger) Printf(format string, v ...any) { l.emit(fmt.Sprintf(format, v...)) }

func (l pahoLogger) emit(msg string) {
	ctx := context.Background()
	if !l.log.Enabled(ctx, l.level) {
		return
	}
	msg = strings.TrimSpace(msg)
	// paho starts most lines with its component, padded: "[store]    memorystore del: ...".
	if rest, ok := strings.CutPrefix(msg, "["); ok {
		if tag, text, ok := strings.Cut(rest, "]"); ok && tag != "" && !strings.ContainsAny(tag, " \t") {
			l.log.Log(ctx, l.level, strings.TrimSpace(text), "paho", tag)
			return
		}
	}
	l.log.Log(ctx, l.level, msg)
}
