package lenscap_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/build/constraint"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// importRule is what one layer of DESIGN.md's package table may import directly. A package
// follows the rule of its first path element under the module (camera/v4l2 follows camera),
// and a top-level helper package named like a layer plus "test" (devicetest) follows that
// layer's rule. Every package may import the standard library, and other packages of its own
// layer. Nothing outside cmd/ may import cmd/.
type importRule struct {
	internal []string // layers of this module it may import
	external []string // path prefixes of other modules it may import ("" alone: anything)
}

// commonExternal may be imported by every layer but device (errgroup, for Run).
var commonExternal = []string{"golang.org/x/sync/"}

// importRules is DESIGN.md's "may import" column, made precise. Change it with the design.
var importRules = map[string]importRule{
	// device: the standard library only; it declares the interfaces it consumes.
	"device": {},
	// camera: device types; capture, encoders and their formats. Not rtc, mqtt, gpio, board.
	"camera": {
		internal: []string{"device"},
		external: []string{
			"github.com/thesyncim/gopus",
			"github.com/pion/rtp",
			"github.com/pion/webrtc/v4/pkg/media/h264reader",
			"github.com/pion/mediadevices",
			"github.com/gen2brain/alsa",
			"golang.org/x/sys/",
			"golang.org/x/image/",
		},
	},
	// gpio: periph.io's conn interfaces only; never periph.io/x/host (board's) nor device.
	"gpio": {
		external: []string{"periph.io/x/conn/"},
	},
	// rtc: pion, and the WebSocket library for signalling; rtc/livekit, LiveKit's SDK (on
	// pion) and its logging interface. Never camera, mqtt, gpio, board.
	"rtc": {
		internal: []string{"device"},
		external: []string{
			"github.com/pion/",
			"github.com/livekit/",
			"github.com/go-logr/logr",
			"github.com/coder/websocket",
			"github.com/gorilla/websocket",
			"golang.org/x/net/",
			"github.com/google/uuid",
		},
	},
	// mqtt: paho (and the embedded broker of the simulated board). Never rtc, camera, gpio, board.
	"mqtt": {
		internal: []string{"device"},
		external: []string{
			"github.com/eclipse/paho.mqtt.golang",
			"github.com/mochi-mqtt/server/",
			"golang.org/x/time/rate", // signalling's per-account limits
			"github.com/google/uuid",
		},
	},
	// board: the only importer of periph.io/x/host.
	"board": {
		internal: []string{"gpio", "camera", "device"},
		external: []string{"periph.io/x/host/", "periph.io/x/conn/", "golang.org/x/sys/"},
	},
	// cmd/...: flags, config, logging, wiring: everything.
	"cmd": {
		internal: []string{"device", "camera", "gpio", "rtc", "mqtt", "board"},
		external: []string{""},
	},
	// The module root holds only this test.
	"": {},
}

// testHelperSuffix names fakes (devicetest, gpiotest): any package's tests may import them, but
// the helpers themselves follow the rule of the layer they are in.
const testHelperSuffix = "test"

// goPackage is the part of `go list -json` this test reads.
type goPackage struct {
	ImportPath     string
	Dir            string
	Standard       bool
	Module         *struct{ Path string }
	Imports        []string
	TestImports    []string
	XTestImports   []string
	IgnoredGoFiles []string // excluded by build constraints here (other GOOS/GOARCH, tags)
	Error          *struct{ Err string }
}

// layerImports are one package's direct imports, from its non-test files and from its tests.
type layerImports struct {
	path        string // relative to the module: "camera/v4l2", "" for the root
	code, tests []string
}

func TestImportRules(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	cmd := exec.Command(goTool, "list", "-e", "-json", "./...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil && len(out) == 0 {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	pkgs, module, err := decodePackages(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) == 0 {
		t.Fatal("go list found no packages")
	}
	var all []layerImports
	for _, p := range pkgs {
		if p.Error != nil {
			t.Logf("%s: %s (checking the imports it lists)", p.ImportPath, p.Error.Err)
		}
		li, err := importsOf(p, module)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, li)
	}
	for _, msg := range checkImports(module, all) {
		t.Error(msg)
	}
}

func decodePackages(out []byte) ([]goPackage, string, error) {
	var pkgs []goPackage
	module := ""
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p goPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, "", fmt.Errorf("go list output: %w", err)
		}
		if p.Module != nil && module == "" {
			module = p.Module.Path
		}
		pkgs = append(pkgs, p)
	}
	if module == "" {
		return nil, "", errors.New("go list: no module path")
	}
	return pkgs, module, nil
}

// importsOf gathers p's imports, including files that the build constraints exclude on this
// machine (a _arm64.go file must obey the rules too), except `//go:build ignore` programs.
func importsOf(p goPackage, module string) (layerImports, error) {
	li := layerImports{
		path:  strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/"),
		code:  slices.Clone(p.Imports),
		tests: append(slices.Clone(p.TestImports), p.XTestImports...),
	}
	fset := token.NewFileSet()
	for _, name := range p.IgnoredGoFiles {
		f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, parser.ImportsOnly|parser.ParseComments)
		if err != nil {
			continue // not Go, or broken: the compiler will say so where it matters
		}
		if isIgnoreProgram(f.Comments) {
			continue
		}
		for _, spec := range f.Imports {
			path, err := strconv.Unquote(spec.Path.Value)
			if err != nil {
				continue
			}
			if strings.HasSuffix(name, "_test.go") {
				li.tests = append(li.tests, path)
			} else {
				li.code = append(li.code, path)
			}
		}
	}
	return li, nil
}

func isIgnoreProgram(groups []*ast.CommentGroup) bool {
	for _, g := range groups {
		for _, c := range g.List {
			if !constraint.IsGoBuild(c.Text) {
				continue
			}
			expr, err := constraint.Parse(c.Text)
			if err != nil {
				return false
			}
			tag, ok := expr.(*constraint.TagExpr)
			return ok && tag.Tag == "ignore"
		}
	}
	return false
}

// layerOf is the rule key for a module-relative package path.
func layerOf(rel string) string {
	first, _, _ := strings.Cut(rel, "/")
	if _, ok := importRules[first]; !ok && strings.HasSuffix(first, testHelperSuffix) {
		first = strings.TrimSuffix(first, testHelperSuffix)
	}
	return first
}

// checkImports returns one message per import that breaks the rules, naming it.
func checkImports(module string, pkgs []layerImports) []string {
	var msgs []string
	for _, p := range pkgs {
		layer := layerOf(p.path)
		rule, ok := importRules[layer]
		name := p.path
		if name == "" {
			name = "(module root)"
		}
		if !ok {
			msgs = append(msgs, fmt.Sprintf("package %s is in no layer of DESIGN.md's package table: "+
				"add its rule to importRules in deps_test.go (and the table)", name))
			continue
		}
		for _, imp := range dedupe(p.code) {
			if why := forbidden(module, layer, rule, imp, false); why != "" {
				msgs = append(msgs, fmt.Sprintf("%s imports %s: %s", name, imp, why))
			}
		}
		for _, imp := range dedupe(p.tests) {
			if why := forbidden(module, layer, rule, imp, true); why != "" {
				msgs = append(msgs, fmt.Sprintf("%s (tests) imports %s: %s", name, imp, why))
			}
		}
	}
	return msgs
}

// forbidden says why layer may not import imp, or "" when it may.
func forbidden(module, layer string, rule importRule, imp string, inTest bool) string {
	switch {
	case imp == "C":
		return "cgo is not allowed (the firmware is built with CGO_ENABLED=0)"
	case imp == module || strings.HasPrefix(imp, module+"/"):
		rel := strings.TrimPrefix(strings.TrimPrefix(imp, module), "/")
		target := layerOf(rel)
		if target == layer {
			return ""
		}
		if target == "cmd" {
			return "nothing outside cmd/ imports cmd/"
		}
		if inTest && strings.HasSuffix(rel, testHelperSuffix) {
			return "" // a fake such as device/devicetest
		}
		if slices.Contains(rule.internal, target) {
			return ""
		}
		return fmt.Sprintf("%s may not import %s (DESIGN.md, Architecture)", layerName(layer), target)
	case isStandard(imp):
		return ""
	}
	for _, prefix := range allowedExternal(layer, rule) {
		if prefix == "" || imp == strings.TrimSuffix(prefix, "/") || strings.HasPrefix(imp, strings.TrimSuffix(prefix, "/")+"/") {
			return ""
		}
	}
	return fmt.Sprintf("%s may import only %s outside the standard library (DESIGN.md, Architecture)",
		layerName(layer), describe(allowedExternal(layer, rule), rule.internal))
}

func allowedExternal(layer string, rule importRule) []string {
	if layer == "device" || layer == "" {
		return rule.external
	}
	return append(slices.Clone(rule.external), commonExternal...)
}

func layerName(layer string) string {
	if layer == "" {
		return "the module root"
	}
	return layer
}

func describe(external, internal []string) string {
	all := append(slices.Clone(internal), external...)
	if len(all) == 0 {
		return "nothing"
	}
	return strings.Join(all, ", ")
}

// isStandard reports whether path is in the standard library: its first element has no dot.
func isStandard(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

func dedupe(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

// TestImportRulesCatchViolations checks the checker on made-up packages.
func TestImportRulesCatchViolations(t *testing.T) {
	const m = "github.com/lenscap/lenscap"
	for _, tc := range []struct {
		name string
		pkg  layerImports
		want string // "" for no violation; else a substring of the one message
	}{
		{"device std only", layerImports{path: "device", code: []string{"sync", "encoding/json"}}, ""},
		{"device imports pion", layerImports{path: "device", code: []string{"github.com/pion/rtp"}}, "device imports github.com/pion/rtp"},
		{"device imports errgroup", layerImports{path: "device", code: []string{"golang.org/x/sync/errgroup"}}, "device imports golang.org/x/sync/errgroup"},
		{"device imports camera", layerImports{path: "device", code: []string{m + "/camera"}}, "device imports " + m + "/camera"},
		{"camera imports device", layerImports{path: "camera/v4l2", code: []string{m + "/device", m + "/camera", "golang.org/x/sys/unix"}}, ""},
		{"camera imports h264reader", layerImports{path: "camera", code: []string{"github.com/pion/webrtc/v4/pkg/media/h264reader"}}, ""},
		{"camera imports webrtc", layerImports{path: "camera", code: []string{"github.com/pion/webrtc/v4"}}, "camera imports github.com/pion/webrtc/v4"},
		{"camera imports rtc", layerImports{path: "camera", code: []string{m + "/rtc"}}, "camera imports " + m + "/rtc"},
		{"camera imports board", layerImports{path: "camera", code: []string{m + "/board"}}, "camera may not import board"},
		{"gpio imports conn", layerImports{path: "gpio", code: []string{"periph.io/x/conn/v3/gpio"}}, ""},
		{"gpio imports host", layerImports{path: "gpio", code: []string{"periph.io/x/host/v3"}}, "gpio imports periph.io/x/host/v3"},
		{"gpio imports device", layerImports{path: "gpio", code: []string{m + "/device"}}, "gpio imports " + m + "/device"},
		{"gpio fake follows gpio", layerImports{path: "gpio/gpiotest", code: []string{"periph.io/x/host/v3/rpi"}}, "gpio/gpiotest imports periph.io/x/host/v3/rpi"},
		{"rtc imports pion and device", layerImports{path: "rtc", code: []string{"github.com/pion/webrtc/v4", m + "/device"}}, ""},
		{"rtc imports camera", layerImports{path: "rtc", code: []string{m + "/camera"}}, "rtc imports " + m + "/camera"},
		{"rtc imports paho", layerImports{path: "rtc", code: []string{"github.com/eclipse/paho.mqtt.golang"}}, "rtc imports github.com/eclipse/paho.mqtt.golang"},
		{"mqtt imports rtc", layerImports{path: "mqtt", code: []string{m + "/rtc"}}, "mqtt imports " + m + "/rtc"},
		{"mqtt imports gpio", layerImports{path: "mqtt", code: []string{m + "/gpio"}}, "mqtt imports " + m + "/gpio"},
		{"mqtt imports pion", layerImports{path: "mqtt", code: []string{"github.com/pion/webrtc/v4"}}, "mqtt imports github.com/pion/webrtc/v4"},
		{"board imports host", layerImports{path: "board", code: []string{"periph.io/x/host/v3", m + "/gpio", m + "/camera"}}, ""},
		{"board imports rtc", layerImports{path: "board", code: []string{m + "/rtc"}}, "board imports " + m + "/rtc"},
		{"board imports mqtt", layerImports{path: "board", code: []string{m + "/mqtt"}}, "board imports " + m + "/mqtt"},
		{"cmd imports anything", layerImports{path: "cmd/lenscap", code: []string{m + "/board", m + "/rtc", "gopkg.in/yaml.v3"}}, ""},
		{"rtc imports cmd", layerImports{path: "rtc", code: []string{m + "/cmd/lenscap"}}, "nothing outside cmd/ imports cmd/"},
		{"cgo", layerImports{path: "camera", code: []string{"C"}}, "camera imports C: cgo"},
		{"tests may use fakes", layerImports{path: "rtc", tests: []string{m + "/camera/cameratest", m + "/device/devicetest"}}, ""},
		{"tests may not use real layers", layerImports{path: "rtc", tests: []string{m + "/camera"}}, "rtc (tests) imports " + m + "/camera"},
		{"code may not use other layers' fakes", layerImports{path: "rtc", code: []string{m + "/camera/cameratest"}}, "rtc imports " + m + "/camera/cameratest"},
		{"top-level fake follows its layer", layerImports{path: "devicetest", code: []string{m + "/device", "github.com/pion/rtp"}}, "devicetest imports github.com/pion/rtp"},
		{"unknown package", layerImports{path: "internal/x"}, "internal/x is in no layer"},
		{"module root std only", layerImports{path: "", tests: []string{"testing", "go/parser"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msgs := checkImports(m, []layerImports{tc.pkg})
			switch {
			case tc.want == "" && len(msgs) > 0:
				t.Errorf("unexpected violations: %q", msgs)
			case tc.want != "" && (len(msgs) != 1 || !strings.Contains(msgs[0], tc.want)):
				t.Errorf("violations %q, want one containing %q", msgs, tc.want)
			}
		})
	}
}
