package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lenscap/lenscap/device"
)

func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", rec.Code)
	}
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func hasSample(body, sample string) bool {
	for _, l := range strings.Split(body, "\n") {
		if l == sample {
			return true
		}
	}
	return false
}

func TestMetricsReadTheFunctionsAtEachScrape(t *testing.T) {
	var captured, opens atomic.Uint64
	var private atomic.Bool
	var viewers atomic.Int64
	kinds := []device.Kind{device.KindVideo, device.KindAudio}
	m := newMetrics(metricsSources{
		Kinds: kinds,
		FramesCaptured: func(k device.Kind) uint64 {
			if k == device.KindVideo {
				return captured.Load()
			}
			return 7
		},
		FramesEncoded: func(device.Kind) uint64 { return 3 },
		SourceOpens:   func(device.Kind) uint64 { return opens.Load() },
		SourceCloses:  func(device.Kind) uint64 { return 0 },
		RTPPackets:    func(device.Kind) uint64 { return 11 },
		RTPBytes:      func(device.Kind) uint64 { return 1200 },
		Private:       func(k device.Kind) bool { return k == device.KindVideo && private.Load() },
		Live:          func(k device.Kind) bool { return !(k == device.KindVideo && private.Load()) },
		Viewers:       func() int { return int(viewers.Load()) },
	}, newCutMetrics())

	first := scrape(t, m)
	for _, want := range []string{
		`lenscap_frames_captured_total{kind="video"} 0`,
		`lenscap_frames_captured_total{kind="audio"} 7`,
		`lenscap_frames_encoded_total{kind="video"} 3`,
		`lenscap_source_opens_total{kind="video"} 0`,
		`lenscap_source_closes_total{kind="audio"} 0`,
		`lenscap_rtp_packets_sent_total{kind="audio"} 11`,
		`lenscap_rtp_bytes_sent_total{kind="video"} 1200`,
		`lenscap_private{kind="video"} 0`,
		`lenscap_live{kind="video"} 1`,
		`lenscap_viewers 0`,
	} {
		if !hasSample(first, want) {
			t.Errorf("first scrape lacks %q", want)
		}
	}
	if !strings.Contains(first, "# TYPE lenscap_frames_captured_total counter") ||
		!strings.Contains(first, "# TYPE lenscap_private gauge") {
		t.Errorf("wrong metric types:\n%s", first)
	}

	captured.Store(42)
	opens.Store(2)
	private.Store(true)
	viewers.Store(3)
	second := scrape(t, m)
	for _, want := range []string{
		`lenscap_frames_captured_total{kind="video"} 42`,
		`lenscap_source_opens_total{kind="video"} 2`,
		`lenscap_private{kind="video"} 1`,
		`lenscap_private{kind="audio"} 0`,
		`lenscap_live{kind="video"} 0`,
		`lenscap_viewers 3`,
	} {
		if !hasSample(second, want) {
			t.Errorf("second scrape lacks %q", want)
		}
	}
}

func TestMetricsLeaveOutWhatIsNotWired(t *testing.T) {
	m := newMetrics(metricsSources{Kinds: []device.Kind{device.KindVideo}, Viewers: func() int { return 1 }}, newCutMetrics())
	body := scrape(t, m)
	if strings.Contains(body, "lenscap_frames_captured_total") || strings.Contains(body, "lenscap_rtp_packets_sent_total") {
		t.Errorf("metrics without a function are exported:\n%s", body)
	}
	if !hasSample(body, "lenscap_viewers 1") || !strings.Contains(body, "go_goroutines") {
		t.Errorf("viewers or the Go collector missing:\n%s", body)
	}
}

func TestMetricsCutHistogramCountsEachCutInItsBucket(t *testing.T) {
	cuts := newCutMetrics()
	m := newMetrics(metricsSources{Kinds: []device.Kind{device.KindVideo, device.KindAudio}}, cuts)
	cuts.Observe(device.KindVideo, device.ByButton, 3*time.Millisecond)
	cuts.Observe(device.KindVideo, device.ByButton, 30*time.Millisecond)
	cuts.Observe(device.KindAudio, device.ByRemote, 400*time.Microsecond)
	body := scrape(t, m)
	for _, want := range []string{
		`lenscap_cut_duration_seconds_bucket{by="button",kind="video",le="0.002"} 0`,
		`lenscap_cut_duration_seconds_bucket{by="button",kind="video",le="0.005"} 1`,
		`lenscap_cut_duration_seconds_bucket{by="button",kind="video",le="0.05"} 2`,
		`lenscap_cut_duration_seconds_count{by="button",kind="video"} 2`,
		`lenscap_cut_duration_seconds_bucket{by="remote",kind="audio",le="0.0005"} 1`,
		`lenscap_cut_duration_seconds_count{by="remote",kind="audio"} 1`,
	} {
		if !hasSample(body, want) {
			t.Errorf("lacks %q in:\n%s", want, grepLines(body, "cut_duration"))
		}
	}
}

func grepLines(body, sub string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
