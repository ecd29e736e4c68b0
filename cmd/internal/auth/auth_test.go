package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/lenscap/lenscap/device/keyfile"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func mustKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mint(t *testing.T, k ed25519.PrivateKey, g Grant) string {
	t.Helper()
	tok, err := Mint(k, g, t0)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func verifier(k ed25519.PrivateKey, edit ...func(*VerifierConfig)) *Verifier {
	c := VerifierConfig{OwnKey: k.Public().(ed25519.PublicKey), ID: "cam-1",
		Groups: []string{"hall"}, Now: func() time.Time { return t0.Add(time.Hour) }}
	for _, e := range edit {
		e(&c)
	}
	return NewVerifier(c)
}

func TestATokenSaysWhoAndWhatRole(t *testing.T) {
	k := mustKey(t)
	for _, aud := range []string{"cam-1", GroupAudience("hall"), AnyCamera} {
		tok := mint(t, k, Grant{Name: "grandma", Role: RoleView, Audience: []string{aud}, TTL: 24 * time.Hour})
		id, err := verifier(k).Verify(tok)
		if err != nil || id.Name != "grandma" || id.Role != RoleView || !id.Expires.Equal(t0.Add(24*time.Hour)) {
			t.Errorf("audience %s: %+v, %v", aud, id, err)
		}
	}
}

func TestTokensThatMustBeRefused(t *testing.T) {
	k, other := mustKey(t), mustKey(t)
	good := Grant{Name: "nurse", Role: RoleControl, Audience: []string{"cam-1"}, TTL: 2 * time.Hour}
	expired := good
	expired.TTL = 30 * time.Minute
	wrongAud := good
	wrongAud.Audience = []string{"cam-2", GroupAudience("yard")}
	none := jwt.NewWithClaims(jwt.SigningMethodNone, claims{Role: RoleControl,
		RegisteredClaims: jwt.RegisteredClaims{Issuer: issuer, Subject: "x", Audience: []string{"cam-1"}}})
	unsigned, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	tampered := mint(t, k, good)
	tampered = tampered[:len(tampered)-4] + "AAAA"
	for _, tc := range []struct {
		name string
		tok  string
		v    *Verifier
		want error
	}{
		{"empty", "", verifier(k), ErrUnauthorized},
		{"garbage", "not.a.token", verifier(k), ErrInvalid},
		{"another key", mint(t, other, good), verifier(k), ErrInvalid},
		{"expired", mint(t, k, expired), verifier(k), ErrExpired},
		{"wrong audience", mint(t, k, wrongAud), verifier(k), ErrAudience},
		{"revoked name", mint(t, k, good), verifier(k, func(c *VerifierConfig) { c.Revoked = []string{"nurse"} }), ErrRevoked},
		{"alg none", unsigned, verifier(k), ErrInvalid},
		{"tampered signature", tampered, verifier(k), ErrInvalid},
		{"no keys", mint(t, k, good), NewVerifier(VerifierConfig{ID: "cam-1"}), ErrInvalid},
	} {
		if _, err := tc.v.Verify(tc.tok); !errors.Is(err, tc.want) || !errors.Is(err, ErrUnauthorized) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestRotatingTheKeyRevokesItsTokens(t *testing.T) {
	old, cur := mustKey(t), mustKey(t)
	tok := mint(t, old, Grant{Name: "a", Role: RoleView, Audience: []string{"cam-1"}, TTL: 2 * time.Hour})
	both := verifier(old, func(c *VerifierConfig) { c.Keys = append(c.Keys, cur.Public().(ed25519.PublicKey)) })
	if _, err := both.Verify(tok); err != nil {
		t.Fatalf("with both keys: %v", err)
	}
	if _, err := verifier(cur).Verify(tok); !errors.Is(err, ErrInvalid) {
		t.Errorf("after rotation: %v, want ErrInvalid", err)
	}
}

func TestTheStaticTokenIsControl(t *testing.T) {
	v := NewVerifier(VerifierConfig{Static: "s3cret-token", ID: "cam-1"})
	if id, err := v.Verify("s3cret-token"); err != nil || id.Role != RoleControl || id.Name != StaticName {
		t.Errorf("static token: %+v, %v", id, err)
	}
	if _, err := v.Verify("s3cret-tokeN"); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("a near miss: %v", err)
	}
	if !v.Required() || NewVerifier(VerifierConfig{}).Required() {
		t.Error("Required does not follow what is configured")
	}
}

func TestRoles(t *testing.T) {
	if !RoleControl.Allows(RoleView) || RoleView.Allows(RoleControl) || !RoleView.Allows(RoleView) {
		t.Error("control must allow view, view must not allow control")
	}
	if _, err := ParseRole("admin"); err == nil {
		t.Error("admin is not a role")
	}
	k := mustKey(t)
	for _, g := range []Grant{
		{Name: "", Role: RoleView, Audience: []string{"cam-1"}},
		{Name: "x", Role: "admin", Audience: []string{"cam-1"}},
		{Name: "x", Role: RoleView},
		{Name: "new\nline", Role: RoleView, Audience: []string{"cam-1"}},
	} {
		if _, err := Mint(k, g, t0); err == nil {
			t.Errorf("minted %+v", g)
		}
	}
}

func TestTheCameraKeyAndOwnerCredentialAreMadeOnceAndPrivate(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := CameraKey(dir, false); err == nil {
		t.Fatal("a missing key without create: no error")
	}
	k, created, err := CameraKey(dir, true)
	if err != nil || !created {
		t.Fatalf("create: %v, %v", created, err)
	}
	owner, err := Owner(dir, "cam-1", k, t0)
	if err != nil {
		t.Fatal(err)
	}
	k2, created, err := CameraKey(dir, true)
	if err != nil || created || !k.Equal(k2) {
		t.Fatalf("second start: created %v, same key %v, %v", created, k.Equal(k2), err)
	}
	if again, err := Owner(dir, "cam-1", k2, t0.Add(time.Hour)); err != nil || again != owner {
		t.Errorf("owner credential changed: %v", err)
	}
	for _, f := range []string{KeyFile, OwnerFile} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v; want mode 0600", f, fi.Mode(), err)
		}
	}
	id, err := verifier(k).Verify(owner)
	if err != nil || id != (Identity{Name: OwnerName, Role: RoleControl}) {
		t.Errorf("owner credential: %+v, %v", id, err)
	}
	// An unreadable key is not silently replaced (that would revoke every token).
	if err := os.WriteFile(filepath.Join(dir, KeyFile), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := CameraKey(dir, true); err == nil {
		t.Error("a corrupt key was replaced")
	}
}

func TestPublicKeyFilesRoundTrip(t *testing.T) {
	k := mustKey(t)
	pub, err := PublicKeyPEM(k.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "fleet.pub")
	if err := os.WriteFile(path, append(pub, pub...), 0o644); err != nil {
		t.Fatal(err)
	}
	keys, err := ReadPublicKeys([]string{path})
	if err != nil || len(keys) != 2 || !keys[0].Equal(k.Public()) {
		t.Fatalf("keys %d, %v", len(keys), err)
	}
	priv, _ := keyfile.Encode(k)
	bad := filepath.Join(t.TempDir(), "priv.pem")
	os.WriteFile(bad, priv, 0o600)
	if _, err := ReadPublicKeys([]string{bad}); err == nil || !strings.Contains(err.Error(), "PUBLIC KEY") {
		t.Errorf("a private key as a token key: %v", err)
	}
}

func TestAFleetKeysTokensMustExpire(t *testing.T) {
	own, fleet := mustKey(t), mustKey(t)
	v := verifier(own, func(c *VerifierConfig) { c.Keys = []ed25519.PublicKey{fleet.Public().(ed25519.PublicKey)} })
	forever := Grant{Name: "x", Role: RoleView, Audience: []string{"cam-1"}}
	if _, err := v.Verify(mint(t, fleet, forever)); !errors.Is(err, ErrInvalid) {
		t.Errorf("a fleet token without expiry: %v, want ErrInvalid", err)
	}
	if _, err := v.Verify(mint(t, own, forever)); err != nil {
		t.Errorf("the camera's own token without expiry (an owner credential): %v", err)
	}
	day := forever
	day.TTL = 24 * time.Hour
	if _, err := v.Verify(mint(t, fleet, day)); err != nil {
		t.Errorf("a fleet token that expires: %v", err)
	}
}
