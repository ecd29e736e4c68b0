package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

// field is one key and value of an event line. A bare field is printed without its key in
// the text form ("state {...}", "error some text"); in JSON every field has its key.
type field struct {
	key  string
	val  any
	bare bool
}

func kv(key string, val any) field { return field{key: key, val: val} }

func bare(key string, val any) field { return field{key: key, val: val, bare: true} }

// printer writes the view's events, one line each: "event [kind] key=value ..." as text, or a
// JSON object with "event", "kind" (when there is one), the fields and "t_ms" (milliseconds
// since the hello) with --json. It is safe for concurrent use: the track readers print too.
type printer struct {
	mu    sync.Mutex
	w     io.Writer
	json  bool
	start time.Time
}

func newPrinter(w io.Writer, asJSON bool, start time.Time) *printer {
	return &printer{w: w, json: asJSON, start: start}
}

// emit prints one event. kind is "video", "audio" or "" (an event of the whole session).
func (p *printer) emit(event, kind string, fields ...field) {
	var line []byte
	if p.json {
		line = jsonLine(event, kind, time.Since(p.start), fields)
	} else {
		line = textLine(event, kind, fields)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, _ = p.w.Write(line) // a closed stdout must not end the session
}

// textLine is "event [kind] k=v ...\n".
func textLine(event, kind string, fields []field) []byte {
	var b strings.Builder
	b.WriteString(event)
	if kind != "" {
		b.WriteString(" " + kind)
	}
	for _, f := range fields {
		b.WriteByte(' ')
		if !f.bare {
			b.WriteString(f.key + "=")
		}
		b.WriteString(textValue(f.val, f.bare))
	}
	b.WriteByte('\n')
	return []byte(b.String())
}

// textValue formats a value for the text form: numbers and booleans as Go prints them,
// lists joined with commas, raw JSON as it is, a string as it is when bare or when it has no
// space or quote (else quoted).
func textValue(v any, bare bool) string {
	switch x := v.(type) {
	case json.RawMessage:
		var c bytes.Buffer
		if json.Compact(&c, x) != nil {
			return string(x)
		}
		return c.String()
	case string:
		if bare || (x != "" && !strings.ContainsAny(x, " \t\n\"=")) {
			return strings.ReplaceAll(x, "\n", " ")
		}
		return strconv.Quote(x)
	case []bool:
		parts := make([]string, len(x))
		for i, b := range x {
			parts[i] = strconv.FormatBool(b)
		}
		if len(parts) == 0 {
			return "-"
		}
		return strings.Join(parts, ",")
	case []string:
		if len(x) == 0 {
			return "-"
		}
		return strings.Join(x, ",")
	}
	return fmt.Sprint(v)
}

// jsonLine is {"event":...,"kind":...,fields...,"t_ms":...}\n with the keys in that order.
func jsonLine(event, kind string, since time.Duration, fields []field) []byte {
	var b bytes.Buffer
	b.WriteString(`{"event":`)
	writeJSON(&b, event)
	if kind != "" {
		b.WriteString(`,"kind":`)
		writeJSON(&b, kind)
	}
	for _, f := range fields {
		b.WriteByte(',')
		writeJSON(&b, f.key)
		b.WriteByte(':')
		writeJSON(&b, f.val)
	}
	b.WriteString(`,"t_ms":`)
	b.WriteString(strconv.FormatInt(since.Milliseconds(), 10))
	b.WriteString("}\n")
	return b.Bytes()
}

func writeJSON(b *bytes.Buffer, v any) {
	if raw, ok := v.(json.RawMessage); ok && json.Valid(raw) {
		_ = json.Compact(b, raw)
		return
	}
	enc, err := json.Marshal(v)
	if err != nil {
		enc, _ = json.Marshal(fmt.Sprint(v))
	}
	b.Write(enc)
}
