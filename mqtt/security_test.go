package mqtt

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckBrokerSecurity(t *testing.T) {
	cases := []struct {
		url        string
		insecureOK bool
		wantErr    bool // ErrInsecureBroker
		wantWarn   bool
	}{
		{"mqtts://broker.example:8883", false, false, false},
		{"ssl://10.0.0.5", false, false, false},
		{"mqtts://cam-1:secret@broker.example", false, false, false},
		{"mqtt://127.0.0.1:1883", false, false, false},
		{"mqtt://127.8.9.10", false, false, false},
		{"tcp://[::1]:1883", false, false, false},
		{"mqtt://localhost:1883", false, false, false},
		{"mqtt://LocalHost", false, false, false},
		{"mqtt://broker.example:1883", false, true, false},
		{"tcp://192.168.1.10", false, true, false},
		{"mqtt://:secret@192.168.1.10", false, true, false}, // a password without a user
		{"mqtt://0.0.0.0:1883", false, true, false},
		{"mqtt://broker.example:1883", true, false, true},
		{"mqtt://cam-1:secret@192.168.1.10:1883", false, false, true},
		{"tcp://cam-1@broker.example", false, false, true},
	}
	for _, c := range cases {
		warn, err := CheckBrokerSecurity(c.url, c.insecureOK)
		if got := errors.Is(err, ErrInsecureBroker); got != c.wantErr || (err != nil && !c.wantErr) {
			t.Errorf("%s (insecure ok %t): error %v, want ErrInsecureBroker %t", c.url, c.insecureOK, err, c.wantErr)
		}
		if (warn != "") != c.wantWarn {
			t.Errorf("%s (insecure ok %t): warning %q, want one %t", c.url, c.insecureOK, warn, c.wantWarn)
		}
		for _, s := range []string{warn, errString(err)} {
			if strings.Contains(s, "secret") {
				t.Errorf("%s: the password is in %q", c.url, s)
			}
		}
	}
	if _, err := CheckBrokerSecurity("http://broker.example", true); err == nil || errors.Is(err, ErrInsecureBroker) {
		t.Errorf("a URL that is not a broker's: %v, want ParseBrokerURL's error", err)
	}
	if _, err := CheckBrokerSecurity("mqtt://broker.example", false); err == nil || !strings.Contains(err.Error(), "mqtt_insecure") {
		t.Errorf("refusal %v: want it to name the setting that accepts it", err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
