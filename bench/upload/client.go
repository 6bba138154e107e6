package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// newClient talks HTTP/1.1 to the receiver on loopback only, one connection per
// upload in flight.
func newClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		DisableCompression:  true,
		MaxIdleConnsPerHost: 16,
	}}
}

type upload struct {
	host, episode, sha string
	body               *stream
}

type episodeResponse struct {
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	Status string `json:"status"`
}

// put sends u and returns how long it took until the receiver's 201 arrived.
func put(ctx context.Context, client *http.Client, baseURL string, u upload) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, baseURL+"/v1/episodes", u.body)
	if err != nil {
		return 0, err
	}
	req.ContentLength = u.body.size
	req.Header.Set("X-Cis490-Host", u.host)
	req.Header.Set("X-Cis490-Episode", u.episode)
	req.Header.Set("X-Cis490-Sha256", u.sha)
	req.Header.Set("Content-Type", "application/octet-stream")
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("upload %s: %w", u.episode, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	elapsed := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("upload %s: read answer: %w", u.episode, err)
	}
	if resp.StatusCode != http.StatusCreated {
		return 0, fmt.Errorf("upload %s: got %s, want 201 Created: %s", u.episode, resp.Status, raw)
	}
	var got episodeResponse
	if err := json.Unmarshal(raw, &got); err != nil {
		return 0, fmt.Errorf("upload %s: 201 with an unreadable body %q: %w", u.episode, raw, err)
	}
	if got.SHA256 != u.sha || got.Size != u.body.size || got.Status != "created" {
		return 0, fmt.Errorf("upload %s: 201 says sha256 %s, size %d, status %q; sent %s, %d bytes",
			u.episode, got.SHA256, got.Size, got.Status, u.sha, u.body.size)
	}
	return elapsed, nil
}

func episodeName(kind string, run, i int) string {
	return kind + "-r" + strconv.Itoa(run) + "-" + strconv.Itoa(i) + ".tar"
}
