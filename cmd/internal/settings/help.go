package settings

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// HelpError is what a command returns for -h, --help or --version: Text is to be printed on
// standard output, and the command exits 0 (Exit). It wraps flag.ErrHelp.
type HelpError struct{ Text string }

func (e *HelpError) Error() string { return e.Text }
func (e *HelpError) Unwrap() error { return flag.ErrHelp }

// Help returns a *HelpError whose text is head, then the flags of fs (flag.PrintDefaults).
func Help(head string, fs *flag.FlagSet) error {
	var b strings.Builder
	b.WriteString(head)
	out := fs.Output()
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fs.SetOutput(out)
	return &HelpError{Text: b.String()}
}

// Version returns a *HelpError whose text is "program version".
func Version(program, version string) error {
	return &HelpError{Text: program + " " + version}
}

// Exit reports how a command's run ended and returns the exit status: 0 for nil, or for an
// error that wraps flag.ErrHelp (help or version: its text on stdout); 1 for any other
// error, written to stderr as "program: error".
func Exit(program string, err error, stdout, stderr io.Writer) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprintln(stdout, strings.TrimSuffix(err.Error(), "\n"))
		return 0
	}
	fmt.Fprintf(stderr, "%s: %v\n", program, err)
	return 1
}
