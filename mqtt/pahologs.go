package mqtt

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// BridgePahoLogs sends paho's logs to log: CRITICAL as errors, ERROR as warnings (paho reports
// every lost connection as an error; the Client logs those itself), WARN as info and DEBUG as
// debug (only when log enables debug: paho's debug output is heavy). paho's loggers are
// package variables shared by every paho client of the process: call it once, from main,
// before any client runs.
func BridgePahoLogs(log *slog.Logger) {
	log = log.With("component", "paho")
	paho.CRITICAL = pahoLogger{log, slog.LevelError}
	paho.ERROR = pahoLogger{log, slog.LevelWarn}
	paho.WARN = pahoLogger{log, slog.LevelInfo}
	if log.Enabled(context.Background(), slog.LevelDebug) {
		paho.DEBUG = pahoLogger{log, slog.LevelDebug}
	}
}

type pahoLogger struct {
	log   *slog.Logger
	level slog.Level
}

func (l pahoLogger) Println(v ...any) {
	l.log.Log(context.Background(), l.level, strings.TrimSpace(fmt.Sprintln(v...)))
}

func (l pahoLogger) Printf(format string, v ...any) {
	l.log.Log(context.Background(), l.level, strings.TrimSpace(fmt.Sprintf(format, v...)))
}
