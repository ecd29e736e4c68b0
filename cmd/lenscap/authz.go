package main

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/lenscap/lenscap/cmd/internal/auth"
	"github.com/lenscap/lenscap/rtc"
)

// identityKey is the request context's key of the caller's auth.Identity.
type identityKey struct{}

// localIdentity is the caller when no credential is configured: the listener is then on
// loopback only (listenPolicy), and whoever reaches it is the machine's own user.
var localIdentity = auth.Identity{Name: "local", Role: auth.RoleControl}

// identity returns the caller of a request that went through need.
func identity(r *http.Request) auth.Identity {
	if id, ok := r.Context().Value(identityKey{}).(auth.Identity); ok {
		return id
	}
	return auth.Identity{}
}

// need serves h to callers whose credential allows role: 401 without a valid one (with why:
// expired, not for this camera, revoked), 403 with a view credential where control is needed.
// The credential is a bearer token in the Authorization header; on the WebSocket, which
// browsers cannot give headers, ?token= is accepted too.
func (a *api) need(role auth.Role, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := localIdentity
		if a.verifier.Required() {
			var err error
			if id, err = a.verifier.Verify(credential(r)); err != nil {
				w.Header().Set("WWW-Authenticate", `Bearer realm="lenscap"`)
				writeJSON(w, http.StatusUnauthorized, map[string]string{"error": unauthorizedText(err)})
				return
			}
		}
		if !id.Role.Allows(role) {
			writeJSON(w, http.StatusForbidden, map[string]string{
				"error": "this credential (" + id.Name + ") may only watch: changing privacy needs a control credential"})
			return
		}
		ctx := context.WithValue(r.Context(), identityKey{}, id)
		if a.verifier.Required() { // a named holder: rtc bounds its viewers and its sessions are its own
			ctx = rtc.WithViewer(ctx, id.Name)
		}
		if !id.Expires.IsZero() {
			// A session outlives no credential: rtc ends a viewer's session at its request
			// context's deadline (WHEP's too, though its request has returned).
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, id.Expires)
			defer cancel()
		}
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// credential is the request's bearer token.
func credential(r *http.Request) string {
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return strings.TrimSpace(tok)
	}
	if r.URL.Path == "/ws" {
		return r.URL.Query().Get("token")
	}
	return ""
}

// unauthorizedText says why a credential was refused, without echoing it.
func unauthorizedText(err error) string {
	switch {
	case errors.Is(err, auth.ErrExpired), errors.Is(err, auth.ErrAudience), errors.Is(err, auth.ErrRevoked):
		return strings.TrimPrefix(err.Error(), "auth: ")
	}
	return "a valid bearer token is required"
}
