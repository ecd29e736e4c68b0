package auth

import (
	"crypto/ed25519"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// StaticName is the name of the static bearer token (the token setting) in logs.
const StaticName = "token"

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	// OwnKey is the camera's own key: its tokens may have no expiry (the owner credential).
	OwnKey ed25519.PublicKey
	// Keys are the fleet's keys (token_keys): their tokens are accepted only with an expiry.
	Keys []ed25519.PublicKey
	// Static is a fixed bearer token with the control role (the token setting); empty: none.
	// It is compared in constant time.
	Static string
	// ID and Groups are the camera's: a token is accepted when its audience names the id, one
	// of the groups (GroupAudience) or AnyCamera.
	ID     string
	Groups []string
	// Revoked are names whose tokens are refused whatever their signature.
	Revoked []string
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Verifier checks credentials. It is safe for concurrent use.
type Verifier struct {
	cfg        VerifierConfig
	own, fleet *jwt.Parser
}

// NewVerifier returns a verifier; with no key and no static token it accepts nothing
// (Required reports false then: the caller decides whether that is allowed).
func NewVerifier(cfg VerifierConfig) *Verifier {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithTimeFunc(cfg.Now),
		jwt.WithLeeway(30 * time.Second),
	}
	return &Verifier{cfg: cfg, own: jwt.NewParser(opts...),
		fleet: jwt.NewParser(append(opts, jwt.WithExpirationRequired())...)}
}

// Required reports whether any credential is configured: when it is, every request but the
// page's own files and /healthz needs one.
func (v *Verifier) Required() bool {
	return v.cfg.OwnKey != nil || len(v.cfg.Keys) > 0 || v.cfg.Static != ""
}

// Verify returns who a credential belongs to, or an error wrapping ErrUnauthorized.
func (v *Verifier) Verify(cred string) (Identity, error) {
	if cred == "" {
		return Identity{}, ErrUnauthorized
	}
	if v.cfg.Static != "" && subtle.ConstantTimeCompare([]byte(cred), []byte(v.cfg.Static)) == 1 {
		return Identity{Name: StaticName, Role: RoleControl}, nil
	}
	c, err := v.parse(cred)
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return Identity{}, ErrExpired
	case err != nil:
		return Identity{}, fmt.Errorf("%w (%v)", ErrInvalid, err)
	}
	if !v.forUs(c.Audience) {
		return Identity{}, ErrAudience
	}
	if slices.Contains(v.cfg.Revoked, c.Subject) {
		return Identity{}, ErrRevoked
	}
	role, err := ParseRole(string(c.Role))
	if err != nil || validName(c.Subject) != nil {
		return Identity{}, fmt.Errorf("%w: bad role or name", ErrInvalid)
	}
	id := Identity{Name: c.Subject, Role: role}
	if c.ExpiresAt != nil {
		id.Expires = c.ExpiresAt.Time
	}
	return id, nil
}

// parse checks a token's signature and times: by the camera's own key first, then by the
// fleet's keys, whose tokens must expire.
func (v *Verifier) parse(cred string) (claims, error) {
	err := errors.New("no signing key configured")
	if v.cfg.OwnKey != nil {
		var c claims
		_, err = v.own.ParseWithClaims(cred, &c, func(*jwt.Token) (any, error) { return v.cfg.OwnKey, nil })
		if err == nil || !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
			return c, err
		}
	}
	if len(v.cfg.Keys) > 0 {
		var c claims
		_, err = v.fleet.ParseWithClaims(cred, &c, v.fleetKeys)
		return c, err
	}
	return claims{}, err
}

// fleetKeys returns the fleet's keys (the parser tries each).
func (v *Verifier) fleetKeys(*jwt.Token) (any, error) {
	ks := make([]jwt.VerificationKey, len(v.cfg.Keys))
	for i, k := range v.cfg.Keys {
		ks[i] = k
	}
	return jwt.VerificationKeySet{Keys: ks}, nil
}

// forUs reports whether an audience names this camera.
func (v *Verifier) forUs(aud jwt.ClaimStrings) bool {
	for _, a := range aud {
		if a == AnyCamera || a == v.cfg.ID {
			return true
		}
		for _, g := range v.cfg.Groups {
			if a == GroupAudience(g) {
				return true
			}
		}
	}
	return false
}
