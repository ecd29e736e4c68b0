package livekit

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Check asks the server whether the camera could join (its /rtc/validate endpoint, which the
// SDK also asks before joining): the server is reachable and takes the credentials. It joins
// nothing and publishes nothing, for `lenscap doctor`.
func Check(ctx context.Context, cfg Config) error {
	token, err := joinToken(cfg, nil)
	if err != nil {
		return err
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return fmt.Errorf("livekit: %w", err)
	}
	u.Scheme = map[string]string{"ws": "http", "wss": "https"}[u.Scheme]
	if u.Scheme == "" {
		u.Scheme = "https"
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/rtc/validate"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("livekit: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("livekit: %s unreachable: %w", cfg.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("livekit: %s refused the camera's credentials: %s %s", cfg.URL, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
