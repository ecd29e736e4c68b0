package settings

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

type conf struct {
	StateDir string
	Groups   []string
	On       bool
	N        int
	Wait     time.Duration
}

func table(ignoreUnknown bool) *Table[conf] {
	return &Table[conf]{IgnoreUnknownKeys: ignoreUnknown, Settings: []Setting[conf]{
		String("state_dir", "`dir`", func(c *conf) *string { return &c.StateDir }),
		List("groups", "`groups`", func(c *conf) *[]string { return &c.Groups }),
		Bool("on", "switch", func(c *conf) *bool { return &c.On }),
		Int("n", "`number`", func(c *conf) *int { return &c.N }),
		Duration("wait", "`duration`", func(c *conf) *time.Duration { return &c.Wait }),
	}}
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// load parses args with tb's flags and loads a conf over c.
func load(t *testing.T, tb *Table[conf], c conf, args []string, getenv func(string) string) (conf, string, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cl := tb.Flags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	file, err := cl.Load(&c, getenv)
	return c, file, err
}

func TestOneDeclarationIsAFlagAVariableAndAYAMLKey(t *testing.T) {
	file := writeFile(t, "state_dir: /file\ngroups: [a, b]\non: true\nn: 3\nwait: 2s\n")
	c, got, err := load(t, table(false), conf{}, []string{"--config", file}, env(nil))
	if err != nil || got != file {
		t.Fatalf("file %q, %v", got, err)
	}
	if c.StateDir != "/file" || !slices.Equal(c.Groups, []string{"a", "b"}) || !c.On || c.N != 3 || c.Wait != 2*time.Second {
		t.Errorf("from the file: %+v", c)
	}
	e := env(map[string]string{"LENSCAP_STATE_DIR": "/env", "LENSCAP_GROUPS": "x, y", "LENSCAP_CONFIG": file, "LENSCAP_N": ""})
	c, _, _ = load(t, table(false), conf{}, nil, e)
	if c.StateDir != "/env" || !slices.Equal(c.Groups, []string{"x", "y"}) || c.N != 3 {
		t.Errorf("the environment over LENSCAP_CONFIG's file (an empty variable unset): %+v", c)
	}
	c, _, _ = load(t, table(false), conf{}, []string{"--state-dir", "/flag", "--on=false", "--groups", ""}, e)
	if c.StateDir != "/flag" || c.On || len(c.Groups) != 0 {
		t.Errorf("the flags over the environment: %+v", c)
	}
}

func TestNoFileKeepsTheCallersDefaults(t *testing.T) {
	c, file, err := load(t, table(false), conf{StateDir: "/default"}, nil, env(nil))
	if err != nil || file != "" || c.StateDir != "/default" {
		t.Errorf("%+v, %q, %v", c, file, err)
	}
}

func TestBadValuesNameTheirLayer(t *testing.T) {
	_, _, err := load(t, table(false), conf{}, nil, env(map[string]string{"LENSCAP_N": "many"}))
	if err == nil || !strings.Contains(err.Error(), "config: n: environment LENSCAP_N:") {
		t.Errorf("environment: %v", err)
	}
	_, _, err = load(t, table(false), conf{}, []string{"--wait", "soon"}, env(nil))
	if err == nil || !strings.Contains(err.Error(), "config: wait: flag --wait:") {
		t.Errorf("flag: %v", err)
	}
	file := writeFile(t, "n: 1\non: maybe\n")
	_, _, err = load(t, table(false), conf{}, []string{"--config", file}, env(nil))
	if err == nil || !strings.Contains(err.Error(), "config: "+file+": line 2: on:") {
		t.Errorf("file: %v", err)
	}
}

func TestUnknownKeysAreErrorsListingTheKnownOnes(t *testing.T) {
	var c conf
	err := table(false).LoadYAML([]byte("n: 1\nstate-dir: /x\nother: 2\n"), "c.yaml", &c)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"config: c.yaml: ", `line 2: unknown key "state-dir"`, `line 3: unknown key "other"`,
		"known keys: state_dir, groups, on, n, wait"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
}

func TestIgnoreUnknownKeysReadsAnotherCommandsFile(t *testing.T) {
	var c conf
	if err := table(true).LoadYAML([]byte("board: sim\nn: 4\nlisten: {a: b}\n"), "c.yaml", &c); err != nil || c.N != 4 {
		t.Errorf("n %d, %v", c.N, err)
	}
}

func TestYAMLValues(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       conf
		err        string
	}{
		{"empty", "", conf{N: 9}, ""},
		{"comments only", "# nothing\n", conf{N: 9}, ""},
		{"null keeps the value", "n: ~\ngroups:\n", conf{N: 9}, ""},
		{"list as a string", "groups: a, b\n", conf{N: 9, Groups: []string{"a", "b"}}, ""},
		{"block list", "groups:\n  - a\n  - b\n", conf{N: 9, Groups: []string{"a", "b"}}, ""},
		{"alias", "groups: &g [a]\n<<: {groups: *g, n: 1}\n", conf{N: 1, Groups: []string{"a"}}, ""},
		{"merge, own keys win", "n: 9\n<<: {n: 1, state_dir: /m}\n", conf{N: 9, StateDir: "/m"}, ""},
		{"nested list", "groups: [[a]]\n", conf{}, "line 1: groups:"},
		{"mapping for a string", "state_dir: {a: b}\n", conf{}, "state_dir: want a single value"},
		{"key twice", "n: 1\nn: 2\n", conf{}, `line 2: key "n" given twice`},
		{"top-level list", "- n\n", conf{}, "want a mapping"},
		{"two documents", "n: 1\n---\nn: 2\n", conf{}, "want one YAML document"},
		{"syntax", "n: [\n", conf{}, "config: c.yaml: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := conf{N: 9}
			err := table(false).LoadYAML([]byte(tc.yaml), "c.yaml", &c)
			if tc.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), "config: c.yaml: ") || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("err = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.N != tc.want.N || c.StateDir != tc.want.StateDir || !slices.Equal(c.Groups, tc.want.Groups) {
				t.Errorf("got %+v, want %+v", c, tc.want)
			}
		})
	}
}

func TestSelfMergingAliasDoesNotLoop(t *testing.T) {
	var c conf
	_ = table(true).LoadYAML([]byte("a: &a {n: 1, <<: *a}\n<<: *a\n"), "c.yaml", &c)
}

func TestLoadFileRejectsHugeAndMissingFiles(t *testing.T) {
	var c conf
	if err := table(false).LoadFile("/nonexistent.yaml", &c); err == nil || !strings.Contains(err.Error(), "/nonexistent.yaml") {
		t.Errorf("missing: %v", err)
	}
	huge := writeFile(t, "# "+strings.Repeat("x", MaxFileSize)+"\n")
	if err := table(false).LoadFile(huge, &c); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("huge: %v", err)
	}
}

func TestFlagUsageNamesTheVariable(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	table(false).Flags(fs)
	err := Help("usage: test\n\n", fs)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("Help: %v does not wrap flag.ErrHelp", err)
	}
	for _, want := range []string{"usage: test\n\n", "-state-dir dir", "LENSCAP_STATE_DIR", "-config file", "LENSCAP_CONFIG", "-on\n"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("usage lacks %q:\n%s", want, err)
		}
	}
}

func TestAttrsLogEverySettingWithAGetter(t *testing.T) {
	c := conf{StateDir: "/s", N: 2}
	tb := table(false)
	tb.Settings = append(tb.Settings, Setting[conf]{Key: "secret", Set: func(*conf, string) error { return nil }})
	var b bytes.Buffer
	slog.New(slog.NewTextHandler(&b, nil)).Info("x", "c", slog.GroupValue(tb.Attrs(&c)...))
	for _, want := range []string{"c.state_dir=/s", "c.n=2", "c.on=false", "c.wait=0s"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("log lacks %q: %s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "secret") {
		t.Errorf("a setting without Get is logged: %s", b.String())
	}
}

func TestExitPrintsHelpOnStdoutAndErrorsOnStderr(t *testing.T) {
	for _, tc := range []struct {
		err            error
		code           int
		stdout, stderr string
	}{
		{nil, 0, "", ""},
		{Version("prog", "1.2"), 0, "prog 1.2\n", ""},
		{&HelpError{Text: "usage: prog\n"}, 0, "usage: prog\n", ""},
		{errors.New("broken"), 1, "", "prog: broken\n"},
	} {
		var out, errb bytes.Buffer
		if code := Exit("prog", tc.err, &out, &errb); code != tc.code || out.String() != tc.stdout || errb.String() != tc.stderr {
			t.Errorf("%v: status %d, stdout %q, stderr %q", tc.err, code, out.String(), errb.String())
		}
	}
}

func TestSplitListAndParseDuration(t *testing.T) {
	if got := SplitList(" a , ,b,"); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("SplitList: %q", got)
	}
	if got := SplitList(""); got == nil || len(got) != 0 {
		t.Errorf("SplitList(\"\") = %#v, want an empty list", got)
	}
	if d, err := ParseDuration(" 0 "); err != nil || d != 0 {
		t.Errorf("ParseDuration(0) = %v, %v", d, err)
	}
	if _, err := ParseDuration("fast"); err == nil || !strings.Contains(err.Error(), "not a duration") {
		t.Errorf("ParseDuration(fast): %v", err)
	}
}
