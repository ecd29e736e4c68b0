package mqtt

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/lenscap/lenscap/device"
)

// Commands are applied in batches: all the messages waiting when Run's goroutine is free, up
// to batchLimit, are applied as one (group commit).
//
//   - Results and ids: each command gets the result it would get if the commands were applied
//     one by one in arrival order, and the state after the batch is the state after the last
//     of them (device.Device.SetPrivacyBatch): a lift that arrived before a cut never undoes
//     it; a lift that arrived after it does. A command id seen before, in the record or
//     earlier in the same batch, is acknowledged with its first result, Duplicate, and not
//     applied again.
//   - Cuts first: the kinds that end the batch private are cut (gate, persist, removeTrack,
//     stop) before any kind is opened, and each cut's early gate was taken on arrival
//     (onMessage), so a cut behind a flood takes effect as it arrives. A kind cut and lifted
//     again within one batch is not closed and reopened; its frames from the cut's arrival
//     until the batch is applied are dropped.
//   - Commit: the privacy state is persisted once per batch (by the device), then the command
//     record once; then the new retained state is published, then the acks in arrival order
//     (each carries the state after the whole batch), and only then is each message
//     acknowledged to the broker (PUBACK). A crash before that redelivers the whole batch,
//     which the record makes harmless.

// batchLimit is the most commands applied as one batch: half of the record, so that the ids of
// the last two batches are still remembered when the broker delivers a batch again (its
// PUBACKs lost with the connection).
func (c *Client) batchLimit() int { return max(1, c.cfg.RecordSize/2) }

// processBatch handles messages taken from the inbox together: commands are applied as one
// batch, their acks published and the messages acknowledged to the broker; stray messages are
// acknowledged and their topics unsubscribed. It returns false when ctx ended before the batch
// was applied: nothing was acknowledged, so the broker delivers it all again.
func (c *Client) processBatch(ctx context.Context, pc paho.Client, msgs []inbound) bool {
	defer func() {
		for _, m := range msgs {
			m.release() // applied, refused or dropped: the early gate has done its work
		}
	}()
	var cmds []inbound
	for _, m := range msgs {
		if m.ours {
			cmds = append(cmds, m)
		} else {
			c.stray(pc, m)
		}
	}
	if len(cmds) == 0 {
		return true
	}
	acks, done := c.applyBatch(ctx, cmds)
	if !done {
		return false
	}
	// The retained state first: whoever waits for an ack then reads the new state.
	select {
	case <-c.stateC:
		c.publishState(pc)
	default:
	}
	for i, m := range cmds {
		if acks[i] != nil {
			if b, err := json.Marshal(acks[i]); err == nil {
				pc.Publish(c.topics.Ack(c.cfg.ID), qos, false, b)
			}
		}
		m.ack()
	}
	return true
}

// stray handles a message on a topic left over from a subscription of an earlier
// configuration (the session persists): acknowledged, and the topic unsubscribed.
func (c *Client) stray(pc paho.Client, m inbound) {
	m.ack()
	if !c.unexpected[m.topic] {
		c.unexpected[m.topic] = true
		c.log.Warn("message on a topic not followed any more: unsubscribing", "topic", m.topic)
		pc.Unsubscribe(m.topic)
	}
}

// outcome is what became of one command of a batch.
type outcome struct {
	res       result
	duplicate bool // its id was seen before: res is the first result
	ack       bool // an ack is sent (false: refused without an id)
	change    bool // a privacy change, applied in the batch
	sameAs    int  // a duplicate of the command of index sameAs-1 in the batch; 0: none
}

// applyBatch applies commands as one batch (see above) and returns the ack of each (nil:
// none) and whether they may be acknowledged to the broker: false only when ctx ended before
// the batch was applied (nothing was).
func (c *Client) applyBatch(ctx context.Context, ms []inbound) ([]*Ack, bool) {
	if ctx.Err() != nil {
		return nil, false
	}
	outs, changes, changeOf := c.plan(ms)
	if len(changes) > 0 {
		_, errs := c.cfg.Device.SetPrivacyBatch(ctx, changes)
		if interrupted(ctx, errs) {
			return nil, false
		}
		for j, err := range errs {
			outs[changeOf[j]].res = resultOf(ms[changeOf[j]].cmd.ID, err)
		}
	}
	for i, o := range outs {
		if o.sameAs > 0 {
			outs[i].res = outs[o.sameAs-1].res
		}
	}
	c.commitResults(ms, outs)
	state := c.state()
	acks := make([]*Ack, len(ms))
	for i, o := range outs {
		if o.ack {
			acks[i] = &Ack{ID: o.res.ID, OK: o.res.OK, Code: o.res.Code, Error: o.res.Error, Duplicate: o.duplicate, State: state}
		}
	}
	c.logBatch(ms, outs)
	return acks, true
}

// plan works out what each command of a batch is: refused, a duplicate, a state report or a
// privacy change; it returns the changes to apply, with the index of each one's command.
func (c *Client) plan(ms []inbound) (outs []outcome, changes []device.Change, changeOf []int) {
	outs = make([]outcome, len(ms))
	firstIn := make(map[string]int) // id -> its first command in the batch
	for i, m := range ms {
		id := m.cmd.ID
		if id != "" {
			if res, seen := c.rec.lookup(id); seen {
				outs[i] = outcome{res: res, duplicate: true, ack: true}
				continue
			}
			if first, seen := firstIn[id]; seen {
				outs[i] = outcome{duplicate: true, ack: true, sameAs: first + 1}
				continue
			}
			firstIn[id] = i
		}
		switch change, ok := m.cmd.Change(m.arrived); {
		case m.err != nil:
			outs[i] = outcome{res: resultOf(id, m.err), ack: id != ""}
		case ok:
			outs[i] = outcome{change: true, ack: true}
			changes = append(changes, change)
			changeOf = append(changeOf, i)
		default: // state
			outs[i] = outcome{res: result{ID: id, OK: true}, ack: true}
			c.StateChanged()
		}
	}
	return outs, changes, changeOf
}

// interrupted reports whether the device gave up on a batch because ctx ended: it then applied
// none of it.
func interrupted(ctx context.Context, errs []error) bool {
	if ctx.Err() == nil {
		return false
	}
	for _, err := range errs {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return true
		}
	}
	return false
}

// commitResults records the first result of each new command id of a batch and persists the
// record once.
func (c *Client) commitResults(ms []inbound, outs []outcome) {
	added := false
	for i, m := range ms {
		if m.cmd.ID != "" && !outs[i].duplicate {
			added = c.rec.remember(outs[i].res) || added
		}
	}
	if !added {
		return
	}
	if err := c.rec.save(); err != nil {
		c.log.Error("command record not persisted: a redelivery after a restart would apply the commands again", "err", err)
	}
}

// resultOf turns an error of a command into its result.
func resultOf(id string, err error) result {
	var ce *CommandError
	switch {
	case err == nil:
		return result{ID: id, OK: true}
	case errors.As(err, &ce):
		return result{ID: id, Code: ce.Code, Error: ce.Msg}
	case errors.Is(err, device.ErrButtonWins):
		return result{ID: id, Code: CodeButtonWins, Error: err.Error()}
	case errors.Is(err, device.ErrInvalidChange):
		return result{ID: id, Code: CodeBadField, Error: err.Error()}
	default:
		return result{ID: id, Code: CodeInternal, Error: err.Error()}
	}
}

// detailedBatch is the largest batch whose commands are each logged at Info (refusals at
// Warn); in a larger one (a flood) they are logged at Debug, with one summary at Info.
const detailedBatch = 4

// logBatch logs what became of a batch's commands.
func (c *Client) logBatch(ms []inbound, outs []outcome) {
	detailed := len(ms) <= detailedBatch
	var applied, refused, duplicates int
	for i, m := range ms {
		o := outs[i]
		args := []any{"id", m.cmd.ID, "topic", m.topic}
		lvl, what := slog.LevelInfo, "state command"
		switch {
		case o.duplicate:
			duplicates++
			what = "command seen before: not applied again"
		case m.err != nil:
			refused++
			lvl, what = slog.LevelWarn, "command refused"
			args = append(args, "code", o.res.Code, "err", m.err)
		case o.change:
			applied++
			what = "privacy command"
			args = append(args, "video", fmtKind(m.cmd.Video), "audio", fmtKind(m.cmd.Audio), "ok", o.res.OK, "code", o.res.Code)
		}
		if !detailed {
			lvl = slog.LevelDebug
		}
		c.log.Log(context.Background(), lvl, what, args...)
	}
	if !detailed {
		lvl := slog.LevelInfo
		if refused > 0 {
			lvl = slog.LevelWarn
		}
		c.log.Log(context.Background(), lvl, "commands applied as one batch", "commands", len(ms),
			"privacy", applied, "refused", refused, "duplicates", duplicates,
			"first_id", ms[0].cmd.ID, "last_id", ms[len(ms)-1].cmd.ID)
	}
}

func fmtKind(p *bool) string {
	switch {
	case p == nil:
		return "unchanged"
	case *p:
		return "cut"
	default:
		return "lift"
	}
}
