package main

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/lenscap/lenscap/cmd/internal/auth"
	"github.com/lenscap/lenscap/device"
	"github.com/lenscap/lenscap/device/journal"
	"github.com/lenscap/lenscap/rtc"
)

// maxAPIBody bounds the body of an API request: a privacy change is a few bytes.
const maxAPIBody = 4 << 10

// favicon is the page's icon, served at /favicon.ico (an SVG: the page's link says so).
//
//go:embed web/favicon.svg
var favicon []byte

// pageCSP is the viewer page's Content-Security-Policy: its inline script and style, its own
// icon, and nothing but its own origin to talk to (fetch and the WebSocket).
const pageCSP = "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; " +
	"img-src 'self'; media-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'none'"

// tokenMarker is where servePage tells the page that the API needs a token, so that the page
// can ask for one without first failing a request. The page reads <html data-token>.
var (
	tokenMarker   = []byte(`<html lang="en">`)
	tokenRequired = []byte(`<html lang="en" data-token="required">`)
)

// stateJSON is the body of GET /api/state and of the viewers' state messages.
type stateJSON struct {
	ID      string            `json:"id,omitempty"`
	Board   string            `json:"board"`
	Video   device.KindStatus `json:"video"`
	Audio   device.KindStatus `json:"audio"`
	Viewers int               `json:"viewers"`
	Seq     uint64            `json:"seq"`
	Unsaved bool              `json:"unsaved,omitempty"`
	// Idle is true on demand while no viewer watches: the sources are closed.
	Idle   bool    `json:"idle,omitempty"`
	Uptime float64 `json:"uptime_seconds"`
	// Journal is the privacy journal's public key and latest signed checkpoint.
	Journal *journalInfo `json:"journal,omitempty"`
	// Caller is who asked (GET /api/state, when credentials are in force).
	Caller *auth.Identity `json:"caller,omitempty"`
}

// api is lenscap's HTTP API and viewer page, in front of the rtc server's signalling.
type api struct {
	dev *device.Device
	srv *rtc.Server
	log *slog.Logger
	// state is what GET /api/state and the answers to changes report.
	state func() stateJSON
	// journal serves GET /api/journal; nil: none.
	journal *journal.Journal
	// verifier checks credentials; with none configured (loopback only) everyone may do all.
	verifier *auth.Verifier
	page     []byte
	// metrics serves /metrics; nil: not served.
	metrics http.Handler
	// press presses the simulated button; nil on a real board.
	press func(at time.Time) (device.Status, error)
}

func (a *api) handler() http.Handler {
	view := func(h http.Handler) http.Handler { return a.need(auth.RoleView, h) }
	control := func(h http.Handler) http.Handler { return a.need(auth.RoleControl, h) }
	mux := http.NewServeMux()
	// Without a credential: the page, its icon, its MQTT client and liveness.
	mux.HandleFunc("GET /{$}", a.servePage)
	mux.HandleFunc("GET /favicon.ico", serveFavicon)
	mux.HandleFunc("GET "+mqttClientPath, serveMQTTClient)
	mux.HandleFunc("GET /healthz", a.serveHealth)
	mux.Handle("GET /api/state", view(http.HandlerFunc(a.serveState)))
	mux.Handle("POST /api/privacy", control(http.HandlerFunc(a.servePrivacy)))
	mux.Handle("POST /api/button", control(http.HandlerFunc(a.serveButton)))
	mux.Handle("GET /api/journal", control(http.HandlerFunc(a.serveJournal)))
	if a.metrics != nil {
		mux.Handle("GET /metrics", view(a.metrics))
	}
	if a.srv != nil {
		sig := view(a.srv.Handler())
		mux.Handle("/ws", sig)
		mux.Handle("/whep", sig)
		mux.Handle("/whep/", sig)
	}
	return mux
}

// serveState answers GET /api/state, with the caller's name and role when credentials are in
// force (the page shows the switches only to a control credential).
func (a *api) serveState(w http.ResponseWriter, r *http.Request) {
	st := a.state()
	if a.verifier.Required() {
		id := identity(r)
		st.Caller = &id
	}
	writeJSON(w, http.StatusOK, st)
}

func (a *api) servePage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", pageCSP)
	w.Header().Set("Referrer-Policy", "no-referrer")
	page := a.page
	if a.verifier.Required() {
		page = bytes.Replace(page, tokenMarker, tokenRequired, 1)
	}
	_, _ = w.Write(page)
}

func serveFavicon(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "max-age=86400")
	_, _ = w.Write(favicon)
}

func (a *api) serveHealth(w http.ResponseWriter, r *http.Request) {
	select {
	case <-a.dev.Ready():
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	default:
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "starting"})
	}
}

// privacyRequest is the body of POST /api/privacy; a kind left out is unchanged.
type privacyRequest struct {
	Video *bool `json:"video"`
	Audio *bool `json:"audio"`
}

// privacyUsage is what POST /api/privacy takes, for error messages.
const privacyUsage = `send {"video":true} and/or {"audio":false}`

func (a *api) servePrivacy(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	var req privacyRequest
	if err := decodeBody(w, r, &req, privacyUsage); err != nil {
		a.refuse(w, err)
		return
	}
	if req.Video == nil && req.Audio == nil {
		writeError(w, http.StatusBadRequest, "name a kind: "+privacyUsage, a.state())
		return
	}
	_, err := a.dev.SetPrivacy(r.Context(), device.Change{Video: req.Video, Audio: req.Audio, By: device.ByRemote, Who: identity(r).Name, At: at})
	a.answer(w, err)
}

func (a *api) serveButton(w http.ResponseWriter, r *http.Request) {
	if a.press == nil {
		writeError(w, http.StatusNotFound, "this board has a real button: press it", a.state())
		return
	}
	_, err := a.press(time.Now())
	a.answer(w, err)
}

// answer writes the state after a change, or the reason the change was refused.
func (a *api) answer(w http.ResponseWriter, err error) {
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, a.state())
	case errors.Is(err, device.ErrButtonWins):
		writeError(w, http.StatusConflict, err.Error(), a.state())
	case errors.Is(err, device.ErrInvalidChange):
		writeError(w, http.StatusBadRequest, err.Error(), a.state())
	default:
		a.log.Error("privacy change failed", "err", err)
		writeError(w, http.StatusInternalServerError, err.Error(), a.state())
	}
}

// errBody is a request body that could not be decoded; status says why.
type errBody struct {
	status int
	msg    string
}

func (e *errBody) Error() string { return e.msg }

func (a *api) refuse(w http.ResponseWriter, err error) {
	status := http.StatusBadRequest
	var eb *errBody
	if errors.As(err, &eb) {
		status = eb.status
	}
	writeError(w, status, err.Error(), a.state())
}

// decodeBody reads one JSON object of at most maxAPIBody bytes into v. Any other body is an
// *errBody that says what is wrong in the request's terms, not Go's ("video must be true or
// false", "unknown key \"colour\""), followed by usage where that helps.
// exactKeys refuses an object whose keys are not spelled exactly as v's JSON tags: Go's
// decoder would take "VIDEO" for "video", and MQTT does not, so neither does the API.
func exactKeys(body []byte, v any, usage string) error {
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil {
		return nil // not an object: the decoder says why
	}
	t := reflect.TypeOf(v).Elem()
	known := make(map[string]bool, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		known[name] = true
	}
	for k := range fields {
		if !known[k] {
			return &errBody{http.StatusBadRequest, fmt.Sprintf("unknown key %q: %s", k, usage)}
		}
	}
	return nil
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any, usage string) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAPIBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &errBody{http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", tooBig.Limit)}
		}
		return &errBody{http.StatusBadRequest, "reading body: " + err.Error()}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return &errBody{http.StatusBadRequest, "empty body: " + usage}
	}
	if err := exactKeys(body, v, usage); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &errBody{http.StatusBadRequest, jsonProblem(err, usage)}
	}
	if _, err := dec.Token(); err != io.EOF {
		return &errBody{http.StatusBadRequest, "one JSON object only, nothing after it: " + usage}
	}
	return nil
}

// jsonProblem says what a json.Decoder's error means for the request.
func jsonProblem(err error, usage string) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field == "":
		return "the body must be a JSON object: " + usage
	case errors.As(err, &typeErr):
		return typeErr.Field + " must be " + jsonKindName(typeErr.Type)
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("malformed JSON at byte %d: %s", syntaxErr.Offset, strings.TrimPrefix(syntaxErr.Error(), "json: "))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON: the body ends before the object does"
	}
	// encoding/json has no type for an unknown field: its message is `json: unknown field "x"`.
	if key, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return "unknown key " + key + ": " + usage
	}
	return "malformed JSON: " + strings.TrimPrefix(err.Error(), "json: ")
}

// jsonKindName says which JSON values a Go type takes.
func jsonKindName(t reflect.Type) string {
	if t == nil {
		return "of another type"
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	}
	return "an object"
}

func writeError(w http.ResponseWriter, status int, msg string, st stateJSON) {
	writeJSON(w, status, struct {
		Error string    `json:"error"`
		State stateJSON `json:"state"`
	}{msg, st})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
