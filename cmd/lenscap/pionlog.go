package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// pionLogs bridges pion's loggers to slog. pion's info is chatty about routine ICE and DTLS
// steps, so it becomes debug; its warnings and errors stay what they are, but for the few
// routine warnings of every viewer's session (routine), which become debug.
type pionLogs struct{ log *slog.Logger }

func (p pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{p.log.With("pion", scope)}
}

type pionLogger struct{ log *slog.Logger }

func (l pionLogger) logf(level slog.Level, format string, args ...any) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}

// routine is the few warnings pion gives in the normal course of a viewer's session, by their
// exact format (pion/webrtc v4.2.20, pion/ice v4.4.2); they are logged at debug. Everything
// else pion warns about stays a warning.
func routine(format string, args []any) bool {
	switch format {
	case "Failed to accept RTP %v", "Failed to accept RTCP %v":
		// On every peer connection's end. Its undeclared-media goroutines
		// (undeclaredRTPMediaProcessor, undeclaredRTCPMediaProcessor) wait in AcceptStream on
		// the SRTP and SRTCP sessions for the whole life of the connection; when it closes (our
		// Close as a viewer leaves, or the viewer's DTLS close) the sessions end and
		// AcceptStream returns srtp's "stream is already closed", which pion warns about
		// without checking that the connection is closing. No order of closing on our side
		// avoids it: the sessions end with the connection. Other errors stay warnings.
		err := onlyError(args)
		return err != nil && err.Error() == "stream is already closed"
	case "Remote mDNS candidate added, but mDNS is disabled: (%s)":
		// On every browser's arrival: browsers hide their addresses behind .local names, and
		// rtc.Server disables multicast DNS on purpose (their candidates are learnt as
		// peer-reflexive ones when their checks arrive).
		return true
	case "Warning: mux: no endpoint for packet starting with %d, adding to queue size(%d)":
		// At a connection's start: the viewer's first DTLS packet arrives as soon as ICE
		// connects, before our DTLS transport has started; it is queued and delivered then.
		// The variant that drops a packet ("not adding to queue") stays a warning.
		return true
	}
	return false
}

// onlyError is args' only argument when that is an error, else nil.
func onlyError(args []any) error {
	if len(args) != 1 {
		return nil
	}
	err, _ := args[0].(error)
	return err
}

func (l pionLogger) Trace(msg string)                  {}
func (l pionLogger) Tracef(format string, args ...any) {}
func (l pionLogger) Debug(msg string)                  { l.log.Debug(msg) }
func (l pionLogger) Debugf(format string, args ...any) { l.logf(slog.LevelDebug, format, args...) }
func (l pionLogger) Info(msg string)                   { l.log.Debug(msg) }
func (l pionLogger) Infof(format string, args ...any)  { l.logf(slog.LevelDebug, format, args...) }
func (l pionLogger) Warn(msg string)                   { l.log.Warn(msg) }
func (l pionLogger) Error(msg string)                  { l.log.Error(msg) }
func (l pionLogger) Errorf(format string, args ...any) { l.logf(slog.LevelError, format, args...) }

func (l pionLogger) Warnf(format string, args ...any) {
	level := slog.LevelWarn
	if routine(format, args) {
		level = slog.LevelDebug
	}
	l.logf(level, format, args...)
}
