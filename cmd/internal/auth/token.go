// Package auth is who may watch a camera and who may change its privacy: roles, signed tokens
// (JWT with EdDSA over Ed25519, from github.com/golang-jwt/jwt/v5: no crypto of our own), the
// camera's own signing key and owner credential, and the check every request goes through.
//
// A token names its holder (sub, shown in logs and in who-did-what), its role (view: watch and
// read the state; control: also change privacy), its audience (a camera's id, or "group:NAME"
// for the cameras of a group, or "*" for any camera of the fleet) and, unless it is an owner
// credential, an expiry. It is signed by the camera's own key (kept in its state directory) or
// by a fleet key whose public half the camera is configured with (token_keys). Revocation is by
// key rotation (a new key, and the old public key removed) and by name (token_revoked).
package auth

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// Role is what a credential may do.
type Role string

// The roles.
const (
	// RoleView watches and reads the state.
	RoleView Role = "view"
	// RoleControl also changes privacy (the button's privacy still yields only to the button
	// unless remote_may_lift).
	RoleControl Role = "control"
)

// ParseRole reads a role name.
func ParseRole(s string) (Role, error) {
	switch r := Role(strings.ToLower(strings.TrimSpace(s))); r {
	case RoleView, RoleControl:
		return r, nil
	}
	return "", fmt.Errorf("auth: role %q: want view or control", s)
}

// Allows reports whether a credential of role r may do what needs role need.
func (r Role) Allows(need Role) bool {
	return r == need || r == RoleControl && need == RoleView
}

// Identity is who a verified credential belongs to.
type Identity struct {
	Name string `json:"name"`
	Role Role   `json:"role"`
	// Expires is when the credential expires; zero: never (an owner credential, the static
	// token). A session the credential opened ends then.
	Expires time.Time `json:"expires,omitzero"`
}

// Errors of Verify; each wraps ErrUnauthorized.
var (
	ErrUnauthorized = errors.New("auth: a valid credential is required")
	ErrExpired      = fmt.Errorf("%w: the token has expired", ErrUnauthorized)
	ErrAudience     = fmt.Errorf("%w: the token is not for this camera", ErrUnauthorized)
	ErrRevoked      = fmt.Errorf("%w: the token's name is revoked", ErrUnauthorized)
	ErrInvalid      = fmt.Errorf("%w: the token is not valid", ErrUnauthorized)
)

// AnyCamera is the audience of a token for every camera that trusts its key.
const AnyCamera = "*"

// GroupAudience is the audience of a token for the cameras of group g.
func GroupAudience(g string) string { return "group:" + g }

// claims are a lenscap token's JWT claims.
type claims struct {
	Role Role `json:"role"`
	jwt.RegisteredClaims
}

// issuer is the iss of every lenscap token.
const issuer = "lenscap"

// Grant describes a token to mint.
type Grant struct {
	Name     string        // its holder, shown in logs and who-did-what
	Role     Role          // view or control
	Audience []string      // camera ids, GroupAudience(g) or AnyCamera
	TTL      time.Duration // 0: no expiry (owner credentials only)
}

// Mint signs a token for g with key at now.
func Mint(key ed25519.PrivateKey, g Grant, now time.Time) (string, error) {
	if err := validName(g.Name); err != nil {
		return "", err
	}
	if _, err := ParseRole(string(g.Role)); err != nil {
		return "", err
	}
	if len(g.Audience) == 0 {
		return "", errors.New("auth: a token needs an audience: a camera id, group:NAME or *")
	}
	if g.TTL < 0 {
		return "", errors.New("auth: negative lifetime")
	}
	c := claims{Role: g.Role, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: issuer, Subject: g.Name, Audience: g.Audience,
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)),
	}}
	if g.TTL > 0 {
		c.ExpiresAt = jwt.NewNumericDate(now.Add(g.TTL))
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c).SignedString(key)
	if err != nil {
		return "", fmt.Errorf("auth: sign: %w", err)
	}
	return tok, nil
}

// validName accepts a holder's name for logs: printable, no spaces at the ends, at most 64.
func validName(n string) error {
	if n == "" || len(n) > 64 || strings.TrimSpace(n) != n {
		return fmt.Errorf("auth: name %q: want 1 to 64 characters, no spaces at the ends", n)
	}
	for _, r := range n {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == utf8.RuneError {
			return fmt.Errorf("auth: name %q: no control or bidirectional characters", n)
		}
	}
	return nil
}
