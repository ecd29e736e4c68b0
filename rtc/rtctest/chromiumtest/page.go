package chromiumtest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ConsoleMessage is one console API call (console.log, console.error, ...)
// or one browser log entry (a failed resource load, a deprecation).
type ConsoleMessage struct {
	Time   time.Time
	Source string // "console" for console API calls, else the log entry's source ("network", ...)
	Level  string // console: "log", "error", "warning", ...; log entries: "error", "warning", "info", "verbose"
	Text   string
	URL    string
}

// Exception is one uncaught exception or unhandled promise rejection on the page.
type Exception struct {
	Time   time.Time
	Text   string // the exception's description, with its stack when it has one
	URL    string
	Line   int // zero-based, as DevTools reports it
	Column int
}

// JSError is the error Eval returns when the expression throws or its
// promise rejects.
type JSError struct {
	Text string // the exception's description, with its stack when it has one
}

func (e *JSError) Error() string { return "chromiumtest: javascript: " + e.Text }

// remoteObject is the DevTools Runtime.RemoteObject, reduced to what is read.
type remoteObject struct {
	Type        string          `json:"type"`
	Subtype     string          `json:"subtype,omitempty"`
	Value       json.RawMessage `json:"value,omitempty"`
	Description string          `json:"description,omitempty"`
}

func (o remoteObject) String() string {
	if len(o.Value) > 0 {
		var s string
		if json.Unmarshal(o.Value, &s) == nil {
			return s
		}
		return string(o.Value)
	}
	if o.Description != "" {
		return o.Description
	}
	return o.Type
}

type exceptionDetails struct {
	Text         string        `json:"text"`
	URL          string        `json:"url"`
	LineNumber   int           `json:"lineNumber"`
	ColumnNumber int           `json:"columnNumber"`
	Exception    *remoteObject `json:"exception"`
}

func (d exceptionDetails) message() string {
	if d.Exception != nil {
		if s := d.Exception.String(); s != "" {
			if d.Text != "" && !strings.Contains(s, d.Text) && d.Text != "Uncaught" {
				return d.Text + ": " + s
			}
			return s
		}
	}
	return d.Text
}

// record keeps console messages and exceptions; it runs on the reader goroutine.
func (b *Browser) record(method string, params json.RawMessage) {
	now := time.Now()
	switch method {
	case "Runtime.consoleAPICalled":
		var ev struct {
			Type string         `json:"type"`
			Args []remoteObject `json:"args"`
		}
		if json.Unmarshal(params, &ev) != nil {
			return
		}
		parts := make([]string, len(ev.Args))
		for i, a := range ev.Args {
			parts[i] = a.String()
		}
		b.mu.Lock()
		b.console = append(b.console, ConsoleMessage{Time: now, Source: "console", Level: ev.Type, Text: strings.Join(parts, " ")})
		b.mu.Unlock()
	case "Log.entryAdded":
		var ev struct {
			Entry struct {
				Source string `json:"source"`
				Level  string `json:"level"`
				Text   string `json:"text"`
				URL    string `json:"url"`
			} `json:"entry"`
		}
		if json.Unmarshal(params, &ev) != nil {
			return
		}
		e := ev.Entry
		b.mu.Lock()
		b.console = append(b.console, ConsoleMessage{Time: now, Source: e.Source, Level: e.Level, Text: e.Text, URL: e.URL})
		b.mu.Unlock()
	case "Runtime.exceptionThrown":
		var ev struct {
			Details exceptionDetails `json:"exceptionDetails"`
		}
		if json.Unmarshal(params, &ev) != nil {
			return
		}
		d := ev.Details
		b.mu.Lock()
		b.exceptions = append(b.exceptions, Exception{Time: now, Text: d.message(), URL: d.URL, Line: d.LineNumber, Column: d.ColumnNumber})
		b.mu.Unlock()
	}
}

// Console returns the console messages and log entries seen so far, oldest first.
func (b *Browser) Console() []ConsoleMessage {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]ConsoleMessage(nil), b.console...)
}

// Exceptions returns the uncaught exceptions seen so far, oldest first.
// Exceptions thrown by an Eval expression are returned by Eval instead.
func (b *Browser) Exceptions() []Exception {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Exception(nil), b.exceptions...)
}

// Logs formats the console messages and exceptions for a failure log.
func (b *Browser) Logs() string {
	var sb strings.Builder
	for _, m := range b.Console() {
		fmt.Fprintf(&sb, "%s %s.%s: %s", m.Time.Format("15:04:05.000"), m.Source, m.Level, m.Text)
		if m.URL != "" {
			fmt.Fprintf(&sb, " (%s)", m.URL)
		}
		sb.WriteByte('\n')
	}
	for _, e := range b.Exceptions() {
		fmt.Fprintf(&sb, "%s exception at %s:%d:%d: %s\n", e.Time.Format("15:04:05.000"), e.URL, e.Line+1, e.Column+1, e.Text)
	}
	return sb.String()
}

// Navigate loads url in the page and waits for its load event.
func (b *Browser) Navigate(ctx context.Context, url string) error {
	loaded, stop := b.cdp.waitFor("Page.loadEventFired")
	defer stop()
	var res struct {
		LoaderID  string `json:"loaderId"`
		ErrorText string `json:"errorText"`
	}
	if err := b.cdp.call(ctx, "Page.navigate", map[string]string{"url": url}, &res); err != nil {
		return err
	}
	if res.ErrorText != "" {
		return fmt.Errorf("chromiumtest: navigate %s: %s", url, res.ErrorText)
	}
	if res.LoaderID == "" {
		return nil // same-document navigation: there is no load event
	}
	select {
	case <-loaded:
		return nil
	case <-b.cdp.done:
		return fmt.Errorf("chromiumtest: navigate %s: %w", url, b.cdp.closedErr())
	case <-ctx.Done():
		return fmt.Errorf("chromiumtest: navigate %s: waiting for load: %w", url, ctx.Err())
	}
}

// Eval evaluates the JavaScript expression js in the page. A promise is
// awaited. The result is decoded from JSON into out, unless out is nil; a
// result of undefined leaves out unchanged. When the expression throws or the
// promise rejects, the error is a *JSError with the exception's text.
func (b *Browser) Eval(ctx context.Context, js string, out any) error {
	params := map[string]any{
		"expression":    js,
		"awaitPromise":  true,
		"returnByValue": true,
	}
	var res struct {
		Result           remoteObject      `json:"result"`
		ExceptionDetails *exceptionDetails `json:"exceptionDetails"`
	}
	if err := b.cdp.call(ctx, "Runtime.evaluate", params, &res); err != nil {
		return err
	}
	if res.ExceptionDetails != nil {
		return &JSError{Text: res.ExceptionDetails.message()}
	}
	if out == nil || len(res.Result.Value) == 0 {
		return nil
	}
	if err := json.Unmarshal(res.Result.Value, out); err != nil {
		return fmt.Errorf("chromiumtest: eval: decode %s result: %w", res.Result.Type, err)
	}
	return nil
}

// Screenshot captures the page's viewport as a PNG.
func (b *Browser) Screenshot(ctx context.Context) ([]byte, error) {
	var res struct {
		Data string `json:"data"`
	}
	if err := b.cdp.call(ctx, "Page.captureScreenshot", map[string]string{"format": "png"}, &res); err != nil {
		return nil, err
	}
	png, err := base64.StdEncoding.DecodeString(res.Data)
	if err != nil {
		return nil, fmt.Errorf("chromiumtest: screenshot: %w", err)
	}
	return png, nil
}

// SetViewport emulates a window of width x height CSS pixels; mobile also
// emulates a phone's viewport meta handling. Headless Chromium starts at 800x600.
func (b *Browser) SetViewport(ctx context.Context, width, height int, mobile bool) error {
	return b.cdp.call(ctx, "Emulation.setDeviceMetricsOverride", map[string]any{
		"width":             width,
		"height":            height,
		"deviceScaleFactor": 1,
		"mobile":            mobile,
	}, nil)
}

// WaitFor evaluates the JavaScript expression js every interval until it
// yields true, and fails with the last result or error when ctx ends first.
func (b *Browser) WaitFor(ctx context.Context, js string, interval time.Duration) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var lastErr error
	for {
		var ok bool
		lastErr = b.Eval(ctx, js, &ok)
		if lastErr == nil && ok {
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			if lastErr != nil {
				return errors.Join(ctx.Err(), lastErr)
			}
			return fmt.Errorf("chromiumtest: wait for %q: %w", js, ctx.Err())
		}
	}
}
