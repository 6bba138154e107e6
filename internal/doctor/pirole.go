package doctor

import (
	"context"
	"fmt"
	"sync"

	"github.com/cis490/cis490/internal/localprobe"
	"github.com/cis490/cis490/internal/protocol"
)

// Role is which machine doctor checks: a lab host, or the receiver (the Pi).
type Role string

const (
	RoleAuto     Role = "auto"
	RoleLabHost  Role = "lab-host"
	RoleReceiver Role = "receiver"
)

// Roles lists the values of --role.
var Roles = []Role{RoleAuto, RoleLabHost, RoleReceiver}

// PickRole resolves --role. auto follows the configuration (SPEC §4.3): keys set in
// [serve] and none in [receiver] make a receiver; anything else, a lab host (which
// is also what a configuration that did not load gets: its report says why).
func PickRole(flag string, sections map[string]bool) (Role, error) {
	switch Role(flag) {
	case RoleLabHost, RoleReceiver:
		return Role(flag), nil
	case RoleAuto, "":
		if sections["serve"] && !sections["receiver"] {
			return RoleReceiver, nil
		}
		return RoleLabHost, nil
	}
	return "", fmt.Errorf("--role %q: use auto, lab-host or receiver", flag)
}

// RunAs runs the checks of role (RoleAuto is taken as a lab host: resolve it with
// PickRole first).
func RunAs(ctx context.Context, role Role, opts Options) Report {
	if role == RoleReceiver {
		return run(ctx, opts, receiverDefinitions)
	}
	return Run(ctx, opts)
}

// receiverDefinitions are the receiver's checks, in the order they are reported; the
// ids are a contract, as the lab host's are. The receiver's /healthz is asked once
// and shared by the checks that read it.
func receiverDefinitions(ctx context.Context, opts Options) []definition {
	cfg := opts.Config
	health := sync.OnceValues(func() (*protocol.Health, error) { return localprobe.Health(ctx, cfg.Serve) })
	local := func(check func() Check) func(context.Context) Check {
		return func(context.Context) Check { return check() }
	}
	slowData := "the data folder's file system did not answer: check " + cfg.Serve.DataDir + " (a hung mount?)"
	slowSystemctl := "systemctl did not answer: check `systemctl status` on this machine"
	defs := []definition{
		{id: "config", run: local(func() Check { return checkConfig(cfg, opts.ConfigErr) })},
		{id: "host-name", run: local(func() Check { return checkHostName(cfg) }), needsConfig: true},
		{id: "receiver-service", run: func(ctx context.Context) Check { return checkReceiverService(ctx, opts.SystemdDir, opts.Systemctl) },
			slowHint: slowSystemctl},
		{id: "receiver-healthz", run: local(func() Check { return checkHealthz(cfg, health, opts.Build) }), needsConfig: true},
		{id: "data-dir", run: local(func() Check { return checkDataDir(cfg.Serve.DataDir) }), slowHint: slowData, needsConfig: true},
		{id: "data-disk", run: local(func() Check { return checkDataDisk(cfg.Serve) }), slowHint: slowData, needsConfig: true},
		{id: "storage", run: func(ctx context.Context) Check { return checkStorage(ctx, cfg.Serve.Storage) }, needsConfig: true,
			slowHint: "the object store did not answer: check that it runs and that serve.storage.endpoint (" + cfg.Serve.Storage.Endpoint + ") reaches it"},
		{id: "gate-sources", run: local(func() Check { return checkGateSources(cfg, health, opts.Now()) }), needsConfig: true},
		{id: "server-cert", run: local(func() Check { return checkServerCert(cfg.Serve.TLS, opts.Now()) }), needsConfig: true},
		{id: "client-ca", run: local(func() Check { return checkClientCA(cfg.Serve.TLS.ClientCAFile, opts.Now()) }), needsConfig: true},
		{id: "tokens-file", run: local(func() Check { return checkTokensFile(cfg.Serve) }), needsConfig: true},
		{id: "fleet-health-timer", run: func(ctx context.Context) Check {
			return checkFleetHealthRuns(ctx, cfg.Serve.DataDir, opts.SystemdDir, opts.Systemctl, opts.Now())
		}, slowHint: slowSystemctl, needsConfig: true},
		{id: "version", run: local(func() Check { return checkVersion(opts.Build) })},
	}
	if opts.ConfigErr != nil {
		for i := range defs {
			if defs[i].needsConfig {
				defs[i].run = local(func() Check { return skipped("not checked: the configuration did not load (see config)") })
			}
		}
	}
	return defs
}
