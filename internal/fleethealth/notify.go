package fleethealth

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/syslog"
	"net/http"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/cis490/cis490/internal/alerts"
	"github.com/cis490/cis490/internal/buildinfo"
	"github.com/cis490/cis490/internal/config"
)

// SyslogTag is the identifier of fleet health's syslog messages.
const SyslogTag = "cis490-fleet-health"

// SyslogFacility is daemon: fleet health runs as a system service (a timer), not as a
// user's program. Firing lines are sent at WARNING (priority <28>), resolved and
// expired ones at NOTICE (<29>).
const SyslogFacility = syslog.LOG_DAEMON

// Notifier forwards notifications beyond alerts.jsonl: to syslog, Alertmanager and a
// webhook. Each is best effort: a failure is logged and the check goes on; alerts.jsonl
// is the record, and a firing alert is forwarded again at its next repeat.
type Notifier struct {
	cfg    config.FleetHealth
	log    zerolog.Logger
	client *http.Client
}

// NewNotifier forwards as cfg says: syslog (and syslog_socket), alertmanager_url,
// webhook_url, each request bounded by push_timeout.
func NewNotifier(cfg config.FleetHealth, log zerolog.Logger) *Notifier {
	return &Notifier{cfg: cfg, log: log, client: &http.Client{Timeout: cfg.PushTimeout}}
}

// amAlert is one alert of Alertmanager's API v2 (POST /api/v2/alerts).
type amAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
}

// notify sends this run's lines to syslog and the webhook, and pushes to Alertmanager
// every alert still open (it forgets an alert whose endsAt passes) plus this run's
// closed ones.
func (n *Notifier) notify(ctx context.Context, lines []alerts.Alert, open []amAlert) {
	if n == nil {
		return
	}
	n.syslog(lines)
	n.alertmanager(ctx, open, lines)
	n.webhook(ctx, lines)
}

func (n *Notifier) syslog(lines []alerts.Alert) {
	if !n.cfg.Syslog || len(lines) == 0 {
		return
	}
	network := ""
	if n.cfg.SyslogSocket != "" {
		network = "unixgram"
	}
	w, err := syslog.Dial(network, n.cfg.SyslogSocket, SyslogFacility|syslog.LOG_WARNING, SyslogTag)
	if err != nil {
		n.log.Warn().Err(err).Str("socket", n.cfg.SyslogSocket).
			Msg("syslog is not reachable: this run's alerts were not sent there (set fleet_health.syslog = false to stop trying)")
		return
	}
	defer w.Close()
	for _, l := range lines {
		msg := fmt.Sprintf("%s %s %s/%s: %s (since %s, %s)", l.Status, l.Severity, l.Host, l.Symptom, l.Summary,
			l.Since.UTC().Format(time.RFC3339), l.DedupKey)
		if l.Status == alerts.StatusFiring {
			err = w.Warning(msg)
		} else {
			err = w.Notice(msg)
		}
		if err != nil {
			n.log.Warn().Err(err).Msg("syslog write failed: the rest of this run's alerts were not sent there")
			return
		}
	}
}

func (n *Notifier) alertmanager(ctx context.Context, open []amAlert, lines []alerts.Alert) {
	if n.cfg.AlertmanagerURL == "" {
		return
	}
	batch := append([]amAlert{}, open...)
	for _, l := range lines {
		if l.Status != alerts.StatusFiring {
			// Alertmanager resolves an alert whose endsAt has passed by its own clock;
			// an evaluation time ahead of it (--now in the future) would not.
			endsAt := l.TS
			if wall := time.Now().UTC(); wall.Before(endsAt) {
				endsAt = wall
			}
			batch = append(batch, toAM(l.Host, l.Symptom, l.Since, l.Summary, endsAt))
		}
	}
	if len(batch) == 0 {
		return
	}
	url := strings.TrimRight(n.cfg.AlertmanagerURL, "/") + "/api/v2/alerts"
	if err := n.post(ctx, url, batch); err != nil {
		n.log.Warn().Err(err).Int("alerts", len(batch)).
			Msg("Alertmanager push failed: open alerts are pushed again at the next run")
	}
}

// toAM builds Alertmanager's view of an alert; endsAt in the future keeps it firing,
// endsAt now resolves it.
func toAM(host, symptom string, since time.Time, summary string, endsAt time.Time) amAlert {
	return amAlert{
		Labels: map[string]string{
			"alertname": alertName(symptom), "host": host, "symptom": symptom, "severity": Severity(symptom),
		},
		Annotations: map[string]string{"summary": summary},
		StartsAt:    since.UTC(),
		EndsAt:      endsAt.UTC(),
	}
}

// alertName is Cis490 and the symptom in CamelCase (Cis490FatalOnly), as Prometheus
// names alerts.
func alertName(symptom string) string {
	var b strings.Builder
	b.WriteString("Cis490")
	for _, part := range strings.Split(symptom, "-") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}

// webhook posts each line as it is in alerts.jsonl. The first failure stops the rest:
// a receiver that is down would otherwise cost push_timeout per line.
func (n *Notifier) webhook(ctx context.Context, lines []alerts.Alert) {
	if n.cfg.WebhookURL == "" {
		return
	}
	for i, l := range lines {
		if err := n.post(ctx, n.cfg.WebhookURL, l); err != nil {
			n.log.Warn().Err(err).Int("not_sent", len(lines)-i).
				Msg("webhook failed: the rest of this run's alerts were not posted; firing ones are posted again at their next repeat")
			return
		}
	}
}

func (n *Notifier) post(ctx context.Context, url string, body any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("POST %s: %w", url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "cis490-fleet-health/"+buildinfo.Get().Version)
	res, err := n.client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		return fmt.Errorf("POST %s: %s: %s", url, res.Status, bytes.TrimSpace(msg))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	return nil
}
