package livekit

import (
	"context"
	"log/slog"

	"github.com/go-logr/logr"
	protoLogger "github.com/livekit/protocol/logger"
)

// sdkLogger is the LiveKit SDK's logger over ours: its chatter (each join plan, each signalling
// state) at debug, its errors (a resume that failed, which it retries) as warnings; what
// matters is logged by the publisher itself.
func sdkLogger(l *slog.Logger) protoLogger.Logger {
	return protoLogger.LogRLogger(logr.FromSlogHandler(demoted{l.Handler().WithAttrs([]slog.Attr{slog.String("component", "livekit-sdk")})}))
}

// demoted lowers each record's level one step: info to debug, error to warning.
type demoted struct{ slog.Handler }

func (d demoted) Enabled(ctx context.Context, l slog.Level) bool {
	return d.Handler.Enabled(ctx, lower(l))
}

func (d demoted) Handle(ctx context.Context, r slog.Record) error {
	r.Level = lower(r.Level)
	return d.Handler.Handle(ctx, r)
}

func (d demoted) WithAttrs(as []slog.Attr) slog.Handler { return demoted{d.Handler.WithAttrs(as)} }
func (d demoted) WithGroup(n string) slog.Handler       { return demoted{d.Handler.WithGroup(n)} }

func lower(l slog.Level) slog.Level {
	if l >= slog.LevelError {
		return slog.LevelWarn
	}
	return slog.LevelDebug
}
