package device

import (
	"errors"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func ptr(b bool) *bool { return &b }

func mustNext(t *testing.T, p Policy, cur State, c Change) State {
	t.Helper()
	nxt, err := p.next(cur, c, t0)
	if err != nil {
		t.Fatalf("next(%+v) = %v", c, err)
	}
	return nxt
}

func private(by By) KindState { return KindState{Private: true, By: by, Since: t0} }

// press is the change a press of the button asks for.
func press(t *testing.T, p Policy, cur State) Change {
	t.Helper()
	c, err := p.buttonChange(cur, ButtonEvent{Gesture: GesturePress, At: t0})
	if err != nil || c == nil {
		t.Fatalf("press: %+v, %v", c, err)
	}
	return *c
}

func TestButtonPressEngagesBothKinds(t *testing.T) {
	var p Policy
	c := press(t, p, State{})
	if c.By != ByButton || c.Video == nil || !*c.Video || c.Audio == nil || !*c.Audio || !c.At.Equal(t0) {
		t.Fatalf("press on a public device = %+v, want both private by the button", c)
	}
	got := mustNext(t, p, State{}, c)
	want := State{Video: private(ByButton), Audio: private(ByButton), Seq: 1}
	if got != want {
		t.Errorf("state = %+v, want %+v", got, want)
	}
}

func TestButtonPressWithOneKindLiveMakesAllPrivate(t *testing.T) {
	var p Policy
	cur := State{Video: private(ByRemote), Seq: 4}
	got := mustNext(t, p, cur, press(t, p, cur))
	if !got.Video.Private || got.Video.By != ByButton || !got.Audio.Private || got.Audio.By != ByButton {
		t.Errorf("state = %+v, want both private by the button", got)
	}
}

func TestButtonPressWhenAllPrivateLiftsThem(t *testing.T) {
	var p Policy
	cur := State{Video: private(ByButton), Audio: private(ByButton), Seq: 1}
	got := mustNext(t, p, cur, press(t, p, cur))
	if got.Video.Private || got.Audio.Private || got.Seq != 2 || got.Video.By != ByButton {
		t.Errorf("state = %+v, want both lifted by the button, seq 2", got)
	}
}

func TestButtonKindsLimitWhatThePressToggles(t *testing.T) {
	p := Policy{ButtonKinds: []Kind{KindAudio}}
	c := press(t, p, State{})
	if c.Video != nil || c.Audio == nil || !*c.Audio {
		t.Fatalf("press = %+v, want audio only", c)
	}
	got := mustNext(t, p, State{}, c)
	if got.Video.Private || !got.Audio.Private {
		t.Errorf("state = %+v, want audio private only", got)
	}
}

func TestRemoteLiftOfButtonPrivacyIsRefused(t *testing.T) {
	var p Policy
	cur := State{Video: private(ByButton), Audio: private(ByButton), Seq: 3}
	for _, c := range []Change{
		{Video: ptr(false), By: ByRemote},
		{Audio: ptr(false), By: ByRemote},
		{Video: ptr(false), Audio: ptr(false), By: ByRemote},
	} {
		got, err := p.next(cur, c, t0)
		if !errors.Is(err, ErrButtonWins) {
			t.Errorf("next(%+v) err = %v, want ErrButtonWins", c, err)
		}
		if got != cur {
			t.Errorf("refused change gave %+v, want %+v unchanged", got, cur)
		}
	}
}

func TestRefusedChangeAppliesNoneOfItsKinds(t *testing.T) {
	var p Policy
	cur := State{Video: private(ByButton), Seq: 1}
	// Audio could be made private, but the change as a whole is refused.
	got, err := p.next(cur, Change{Video: ptr(false), Audio: ptr(true), By: ByRemote}, t0)
	if !errors.Is(err, ErrButtonWins) || got != cur {
		t.Errorf("next = %+v, %v; want %+v, ErrButtonWins", got, err, cur)
	}
}

func TestRemoteMayLiftPolicyAllowsRemoteLiftOfButtonPrivacy(t *testing.T) {
	p := Policy{RemoteMayLift: true}
	cur := State{Video: private(ByButton), Audio: private(ByButton), Seq: 3}
	got := mustNext(t, p, cur, Change{Video: ptr(false), By: ByRemote})
	if got.Video.Private || got.Video.By != ByRemote || !got.Audio.Private || got.Seq != 4 {
		t.Errorf("state = %+v, want video lifted by remote, audio private, seq 4", got)
	}
}

func TestRemoteCutThenRemoteLift(t *testing.T) {
	var p Policy
	cut := mustNext(t, p, State{}, Change{Video: ptr(true), Audio: ptr(true), By: ByRemote})
	if cut.Video != private(ByRemote) || cut.Audio != private(ByRemote) || cut.Seq != 1 {
		t.Fatalf("after cut: %+v", cut)
	}
	lift := mustNext(t, p, cut, Change{Video: ptr(false), Audio: ptr(false), By: ByRemote})
	if lift.Video.Private || lift.Audio.Private || lift.Seq != 2 {
		t.Errorf("after lift: %+v", lift)
	}
}

func TestBootPrivacyIsLiftedOnlyByTheButtonUnlessPolicyAllows(t *testing.T) {
	cur := State{Video: private(ByBoot), Audio: private(ByBoot)}
	var p Policy
	if _, err := p.next(cur, Change{Video: ptr(false), By: ByRemote}, time.Now()); !errors.Is(err, ErrButtonWins) {
		t.Fatalf("remote lift of boot privacy: %v, want ErrButtonWins", err)
	}
	got := mustNext(t, p, cur, Change{Video: ptr(false), By: ByButton})
	if got.Video.Private || !got.Audio.Private {
		t.Errorf("button lift: %+v", got)
	}
	p.RemoteMayLift = true
	got = mustNext(t, p, cur, Change{Video: ptr(false), By: ByRemote})
	if got.Video.Private || !got.Audio.Private {
		t.Errorf("remote lift allowed by policy: %+v", got)
	}
}

func TestButtonTakesOverRemotePrivateKind(t *testing.T) {
	var p Policy
	cur := State{Video: private(ByRemote), Seq: 1}
	got := mustNext(t, p, cur, Change{Video: ptr(true), By: ByButton})
	if got.Video.By != ByButton || !got.Video.Private || got.Seq != 2 {
		t.Fatalf("state = %+v, want video private by the button, seq 2", got)
	}
	if !got.Video.Since.Equal(cur.Video.Since) {
		t.Errorf("take-over moved Since from %v to %v", cur.Video.Since, got.Video.Since)
	}
	if _, err := p.next(got, Change{Video: ptr(false), By: ByRemote}, t0); !errors.Is(err, ErrButtonWins) {
		t.Errorf("remote lift after take-over = %v, want ErrButtonWins", err)
	}
}

func TestRemoteEngageOfButtonPrivacyChangesNothing(t *testing.T) {
	var p Policy
	cur := State{Video: private(ByButton), Seq: 1}
	got := mustNext(t, p, cur, Change{Video: ptr(true), By: ByRemote})
	if got != cur {
		t.Errorf("state = %+v, want %+v", got, cur)
	}
}

func TestInvalidChangeChangesNothing(t *testing.T) {
	var p Policy
	cur := State{Audio: private(ByRemote), Seq: 7}
	for name, c := range map[string]Change{
		"no kind":        {By: ByRemote},
		"no kind button": {By: ByButton},
		"empty by":       {Video: ptr(true)},
		"boot":           {Video: ptr(true), By: ByBoot},
		"unknown by":     {Video: ptr(true), Audio: ptr(false), By: "mqtt"},
	} {
		got, err := p.next(cur, c, t0)
		if !errors.Is(err, ErrInvalidChange) {
			t.Errorf("%s: err = %v, want ErrInvalidChange", name, err)
		}
		if got != cur {
			t.Errorf("%s: state = %+v, want %+v", name, got, cur)
		}
	}
}

func TestVideoAloneCanBeCut(t *testing.T) {
	got := mustNext(t, Policy{}, State{}, Change{Video: ptr(true), By: ByRemote})
	if !got.Video.Private || got.Audio.Private {
		t.Errorf("state = %+v, want video private only", got)
	}
}

func TestAudioAloneCanBeCut(t *testing.T) {
	got := mustNext(t, Policy{}, State{}, Change{Audio: ptr(true), By: ByButton})
	if got.Video.Private || !got.Audio.Private {
		t.Errorf("state = %+v, want audio private only", got)
	}
}

func TestSeqGrowsOnlyOnRealChanges(t *testing.T) {
	var p Policy
	steps := []struct {
		c       Change
		wantSeq uint64
	}{
		{Change{Video: ptr(false), Audio: ptr(false), By: ByRemote}, 0}, // already public
		{Change{Video: ptr(true), By: ByRemote}, 1},
		{Change{Video: ptr(true), By: ByRemote}, 1}, // already private
		{Change{Video: ptr(true), Audio: ptr(true), By: ByRemote}, 2},
		{Change{Audio: ptr(true), By: ByButton}, 3}, // the button takes audio over
		{Change{Audio: ptr(true), By: ByButton}, 3},
		{Change{Audio: ptr(true), By: ByRemote}, 3},
		{Change{Video: ptr(false), By: ByRemote}, 4},
	}
	var cur State
	for i, s := range steps {
		cur = mustNext(t, p, cur, s.c)
		if cur.Seq != s.wantSeq {
			t.Fatalf("step %d: seq = %d, want %d", i, cur.Seq, s.wantSeq)
		}
	}
}

func TestHoldTogglesTheHoldKindsOnly(t *testing.T) {
	for _, tc := range []struct {
		p    Policy
		want []Kind
	}{{Policy{}, []Kind{KindAudio}}, {Policy{HoldKinds: []Kind{KindVideo}}, []Kind{KindVideo}}} {
		c, err := tc.p.buttonChange(State{}, ButtonEvent{Gesture: GestureHold, At: t0})
		if err != nil || c == nil {
			t.Fatalf("hold: %+v, %v", c, err)
		}
		for _, k := range Kinds {
			want, named := c.Want(k)
			if named != (k == tc.want[0]) || (named && !want) {
				t.Errorf("policy %+v: hold names %s = %v, %v; want only %v private", tc.p, k, want, named, tc.want)
			}
		}
		if got := tc.p.mayCut(ButtonEvent{Gesture: GestureHold}); len(got) != 1 || got[0] != tc.want[0] {
			t.Errorf("policy %+v: the hold's gate holds %v, want %v", tc.p, got, tc.want)
		}
	}
}

func TestOnlyEventsThatMayCutAreGated(t *testing.T) {
	p := Policy{ButtonKinds: []Kind{KindVideo}}
	for _, tc := range []struct {
		ev   ButtonEvent
		want int
	}{
		{ButtonEvent{Gesture: GesturePress}, 1},
		{ButtonEvent{Gesture: GestureSwitch, Private: true}, 1},
		{ButtonEvent{Gesture: GestureSwitch, Private: false}, 0},
		{ButtonEvent{Gesture: GestureHold}, 1},
		{ButtonEvent{Gesture: "wink"}, 0},
	} {
		if got := p.mayCut(tc.ev); len(got) != tc.want {
			t.Errorf("%+v holds %v, want %d kinds", tc.ev, got, tc.want)
		}
	}
	if _, err := p.buttonChange(State{}, ButtonEvent{Gesture: "wink"}); !errors.Is(err, ErrInvalidChange) {
		t.Errorf("unknown gesture: %v, want ErrInvalidChange", err)
	}
}
