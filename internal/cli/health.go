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
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/cis490/cis490/internal/client"
	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/doctor"
	"github.com/cis490/cis490/internal/store"
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
	// role is --role as given, then as resolved: on the receiver the report is stored
	// in its own data folder rather than sent.
	role string
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

On the receiver (--role receiver, or auto with [serve] keys and no [receiver] keys,
as for doctor) it runs the receiver's checks and stores the report directly as
serve.data_dir/host-health/<host>.json, atomically: no HTTP, no token. Fleet health
then judges the Pi's row by it like any host's.

Exit codes: 0 delivered or stored (whatever the report says), 1 not delivered,
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
			role, err := doctor.PickRole(opts.role, config.Sections(a.v))
			if err != nil {
				return usageErr(err)
			}
			opts.role = string(role)
			return runHealthShip(cmd.Context(), opts, cfg, log)
		},
	}
	addRoleFlag(cmd, &opts.role)
	return cmd
}

func runHealthShip(ctx context.Context, opts *healthShipOptions, cfg config.Config, log zerolog.Logger) error {
	body, status, err := healthReport(ctx, opts, cfg, log)
	if err != nil {
		return err
	}
	if doctor.Role(opts.role) == doctor.RoleReceiver {
		// The Pi is its own receiver: its report goes where the receiver would put it.
		if err := store.PutOwnHealth(cfg.Serve.DataDir, cfg.Host, body, time.Now()); err != nil {
			return fmt.Errorf("health report not stored: %w", err)
		}
		log.Info().Str("data_dir", cfg.Serve.DataDir).Str("host", cfg.Host).Str("report_status", status).Msg("health report stored")
		return nil
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
		report := doctor.RunAs(ctx, doctor.Role(opts.role), doctor.Options{Config: cfg, Logger: log})
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
