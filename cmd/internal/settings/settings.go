// Package settings reads a command's configuration from one table: each setting, declared
// once, is a key of the YAML file given by --config or LENSCAP_CONFIG (state_dir), an
// environment variable (LENSCAP_STATE_DIR) and a flag (--state-dir). Each layer applies over
// the previous one: the caller's defaults, the file, the environment, the flags. An empty
// environment variable counts as unset. What the values mean, and whether they are valid
// together, is the caller's: it normalizes and validates after Load.
//
// lenscap and lenscapctl share it, and so share one file: lenscap rejects the keys it does
// not know, lenscapctl ignores them (Table.IgnoreUnknownKeys).
package settings

import (
	"flag"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

const (
	// EnvPrefix begins every setting's environment variable.
	EnvPrefix = "LENSCAP_"
	// EnvConfig names the YAML file when --config does not.
	EnvConfig = "LENSCAP_CONFIG"
	// MaxFileSize is the largest YAML file read, in bytes.
	MaxFileSize = 1 << 20
)

// Setting is one configuration key of a T. Make one with String, List, Bool, Int, Duration,
// Parsed or Func.
type Setting[T any] struct {
	// Key is the YAML key, lower case with "_" between words (state_dir).
	Key string
	// Usage is the flag's help; a name in back quotes is its value's (see flag.PrintDefaults).
	Usage string
	// Bool makes the flag a switch: --key alone means true.
	Bool bool
	// Set stores a value given as text: a flag's, an environment variable's or a YAML scalar's.
	Set func(c *T, v string) error
	// SetList stores a YAML sequence of strings; nil: the setting takes no sequence.
	SetList func(c *T, v []string) error
	// Get returns the value, for logs (Table.Attrs); nil: not logged.
	Get func(c *T) any
}

// FlagName is the flag of a key: state_dir is --state-dir.
func FlagName(key string) string { return strings.ReplaceAll(key, "_", "-") }

// EnvName is the environment variable of a key: state_dir is LENSCAP_STATE_DIR.
func EnvName(key string) string { return EnvPrefix + strings.ToUpper(key) }

// String is a setting stored as given in the string field returns.
func String[T any](key, usage string, field func(*T) *string) Setting[T] {
	return Setting[T]{Key: key, Usage: usage,
		Set: func(c *T, v string) error { *field(c) = v; return nil },
		Get: func(c *T) any { return *field(c) }}
}

// List is a list of strings: "a, b" (comma-separated) as text, or a YAML sequence.
func List[T any](key, usage string, field func(*T) *[]string) Setting[T] {
	return Setting[T]{Key: key, Usage: usage,
		Set:     func(c *T, v string) error { *field(c) = SplitList(v); return nil },
		SetList: func(c *T, v []string) error { *field(c) = v; return nil },
		Get:     func(c *T) any { return *field(c) }}
}

// Parsed is a setting whose text parse reads into the field returns.
func Parsed[T, V any](key, usage string, field func(*T) *V, parse func(string) (V, error)) Setting[T] {
	return Setting[T]{Key: key, Usage: usage,
		Set: func(c *T, v string) error {
			x, err := parse(v)
			if err != nil {
				return err
			}
			*field(c) = x
			return nil
		},
		Get: func(c *T) any { return *field(c) }}
}

// Bool is a switch: --key alone is true; true or false as text.
func Bool[T any](key, usage string, field func(*T) *bool) Setting[T] {
	s := Parsed(key, usage, field, func(v string) (bool, error) {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return false, fmt.Errorf("%q is not a boolean (true or false)", v)
		}
		return b, nil
	})
	s.Bool = true
	return s
}

// Int is a whole number.
func Int[T any](key, usage string, field func(*T) *int) Setting[T] {
	return Parsed(key, usage, field, func(v string) (int, error) {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return 0, fmt.Errorf("%q is not a whole number", v)
		}
		return n, nil
	})
}

// Duration is a duration such as 30ms or 1.5s (ParseDuration).
func Duration[T any](key, usage string, field func(*T) *time.Duration) Setting[T] {
	return Parsed(key, usage, field, ParseDuration)
}

// ParseDuration reads a duration such as "30ms" or "1.5s"; "0" is zero.
func ParseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (e.g. 30ms, 2s)", s)
	}
	return d, nil
}

// SplitList splits "a, b,,c" into [a b c]; "" is an empty, non-nil list.
func SplitList(s string) []string {
	out := []string{}
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// Table is the settings of a configuration T.
type Table[T any] struct {
	Settings []Setting[T]
	// IgnoreUnknownKeys skips the YAML keys that no setting has, instead of rejecting them:
	// for a command that reads another's file.
	IgnoreUnknownKeys bool
}

// Keys returns the settings' keys, in order.
func (t *Table[T]) Keys() []string {
	keys := make([]string, len(t.Settings))
	for i, s := range t.Settings {
		keys[i] = s.Key
	}
	return keys
}

func (t *Table[T]) lookup(key string) (Setting[T], bool) {
	for _, s := range t.Settings {
		if s.Key == key {
			return s, true
		}
	}
	return Setting[T]{}, false
}

// Attrs returns the value of every setting that has a Get, for slog (a LogValue). Hide the
// secrets in c first.
func (t *Table[T]) Attrs(c *T) []slog.Attr {
	var attrs []slog.Attr
	for _, s := range t.Settings {
		if s.Get != nil {
			attrs = append(attrs, slog.Any(s.Key, s.Get(c)))
		}
	}
	return attrs
}

// CommandLine is what Flags registered on a flag set: after the set's Parse, the --config file
// and the settings the flags gave, in their order.
type CommandLine[T any] struct {
	table      *Table[T]
	configFile string
	given      []givenFlag[T]
}

type givenFlag[T any] struct {
	s Setting[T]
	v string
}

// Flags registers --config and a flag for each setting on fs.
func (t *Table[T]) Flags(fs *flag.FlagSet) *CommandLine[T] {
	cl := &CommandLine[T]{table: t}
	fs.StringVar(&cl.configFile, "config", "", "YAML configuration `file` (also "+EnvConfig+")")
	for _, s := range t.Settings {
		record := func(v string) error { cl.given = append(cl.given, givenFlag[T]{s, v}); return nil }
		usage := s.Usage + " (also " + EnvName(s.Key) + ")"
		if s.Bool {
			fs.BoolFunc(FlagName(s.Key), usage, record)
		} else {
			fs.Func(FlagName(s.Key), usage, record)
		}
	}
	return cl
}

// Load applies to c, in order, the YAML file (--config, else the variable LENSCAP_CONFIG), the
// environment (read with getenv) and the flags. It returns the file's name, "" if none.
func (cl *CommandLine[T]) Load(c *T, getenv func(string) string) (file string, err error) {
	file = cl.configFile
	if file == "" {
		file = getenv(EnvConfig)
	}
	if file != "" {
		if err := cl.table.LoadFile(file, c); err != nil {
			return "", err
		}
	}
	for _, s := range cl.table.Settings {
		if v := getenv(EnvName(s.Key)); v != "" {
			if err := s.Set(c, v); err != nil {
				return "", fmt.Errorf("config: %s: environment %s: %w", s.Key, EnvName(s.Key), err)
			}
		}
	}
	for _, g := range cl.given {
		if err := g.s.Set(c, g.v); err != nil {
			return "", fmt.Errorf("config: %s: flag --%s: %w", g.s.Key, FlagName(g.s.Key), err)
		}
	}
	return file, nil
}
