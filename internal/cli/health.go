package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/cis490/cis490/internal/client"
	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/doctor"
)

// maxReportRead bounds what is read from FILE or stdin; the receiver's own limit
// (serve.max_report_bytes, 1 MiB by default) is enforced by the receiver, which says
// so in its answer.
const maxReportRead = 16 << 20

func newHealthCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Report this host's health to the receiver",
	}
	cmd.AddCommand(newHealthShipCmd(a))
	return cmd
}

type healthShipOptions struct {
	streams Streams
	// source is "" to run doctor here, "-" for standard input, else a file.
	source string
}

func newHealthShipCmd(a *app) *cobra.Command {
	opts := &healthShipOptions{streams: a.streams}
	cmd := &cobra.Command{
		Use:   "ship [FILE|-]",
		Short: "Run doctor (or read its JSON) and deliver the report to the receiver",
		Long: `Run 'cis490 doctor' in-process, or read a report it wrote from FILE or standard
input (-), and PUT it to the receiver's /v1/host-health/<host> through the same
transport as ship, retrying network errors and 5xx (ship.retries times).

The receiver never gates host-health: a host whose commit it refuses still delivers
its report, which then shows commit-allowed failing. cis490-doctor-check.timer runs
this daily.

Exit codes: 0 delivered (whatever the report says), 1 not delivered,
2 usage or configuration error, or FILE is not a JSON object.`,
		Example: "  cis490 health ship\n  cis490 doctor --json > report.json; cis490 health ship report.json",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, log, err := a.load()
			if err != nil {
				return err
			}
			if len(args) == 1 {
				opts.source = args[0]
			}
			return runHealthShip(cmd.Context(), opts, cfg, log)
		},
	}
	return cmd
}

func runHealthShip(ctx context.Context, opts *healthShipOptions, cfg config.Config, log zerolog.Logger) error {
	body, status, err := healthReport(ctx, opts, cfg, log)
	if err != nil {
		return err
	}
	c, err := client.New(cfg, client.Options{Retries: -1, Logger: log})
	if err != nil {
		return fmt.Errorf("health report not delivered: %w", err)
	}
	res, err := c.Do(ctx, client.Request{
		Method: http.MethodPut,
		Path:   "/v1/host-health/" + url.PathEscape(cfg.Host),
		Header: http.Header{"Content-Type": {"application/json"}},
		Body: func() (io.ReadCloser, int64, error) {
			return io.NopCloser(bytes.NewReader(body)), int64(len(body)), nil
		},
	})
	if err != nil {
		return fmt.Errorf("health report not delivered: %w", err)
	}
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("health report not delivered: %w", c.StatusError(res))
	}
	res.Body.Close()
	log.Info().Str("url", c.URL()).Str("host", cfg.Host).Str("report_status", status).Msg("health report delivered")
	return nil
}

// healthReport is the report to send and its status: doctor's, run here, or the one
// in opts.source, which must be a JSON object about this host.
func healthReport(ctx context.Context, opts *healthShipOptions, cfg config.Config, log zerolog.Logger) ([]byte, string, error) {
	if opts.source == "" {
		report := doctor.Run(ctx, doctor.Options{Config: cfg, Logger: log})
		var buf bytes.Buffer
		if err := doctor.WriteJSON(&buf, report); err != nil {
			return nil, "", err
		}
		if ids := report.Failing(doctor.Warn); len(ids) > 0 {
			log.Warn().Strs("checks", ids).Msg("doctor found problems; the report says what to fix")
		}
		return buf.Bytes(), string(report.Status), nil
	}
	in, name := opts.streams.In, "standard input"
	if opts.source != "-" {
		f, err := os.Open(opts.source)
		if err != nil {
			return nil, "", usageErr(err)
		}
		defer f.Close()
		in, name = f, opts.source
	}
	body, status, err := readReport(in, cfg.Host)
	if err != nil {
		return nil, "", usageErr(fmt.Errorf("%s: %w", name, err))
	}
	return body, status, nil
}

// readReport refuses what the receiver would refuse (anything but a JSON object)
// and what it could not catch: a report about another host, filed under this one.
func readReport(r io.Reader, host string) ([]byte, string, error) {
	body, err := io.ReadAll(io.LimitReader(r, maxReportRead+1))
	if err != nil {
		return nil, "", err
	}
	if len(body) > maxReportRead {
		return nil, "", fmt.Errorf("over %d MiB: not a doctor report", maxReportRead>>20)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
		return nil, "", errors.New("not a JSON object: expected the output of `cis490 doctor --json`")
	}
	var about, status string
	if raw, ok := obj["host"]; ok && json.Unmarshal(raw, &about) == nil && about != host {
		return nil, "", fmt.Errorf("the report is about host %q, but this host is %q (host in lab-host.toml)", about, host)
	}
	if raw, ok := obj["status"]; ok {
		_ = json.Unmarshal(raw, &status)
	}
	return body, status, nil
}
