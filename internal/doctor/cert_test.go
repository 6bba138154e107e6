package doctor

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/testpki"
)

func TestCheckClientCert(t *testing.T) {
	t.Parallel()
	issued := time.Now()
	// testpki names the files after the CN, so each lab-07 variant needs its own CA
	// (its own folder).
	good := testpki.NewCA(t, "fleet").ClientExpiring("lab-07", issued.Add(365*24*time.Hour))
	other := testpki.NewCA(t, "fleet").Client("lab-99")
	soon := testpki.NewCA(t, "fleet").ClientExpiring("lab-07", issued.Add(7*24*time.Hour))
	expired := testpki.NewCA(t, "fleet").ClientExpiring("lab-07", issued.Add(-time.Hour))
	tomorrow := testpki.NewCA(t, "fleet").Client("lab-07") // testpki's default: valid for a day
	now := time.Now()                                      // after issuing, so that "a day" has begun to run out
	missing := filepath.Join(t.TempDir(), "lab-07.pem")

	for _, tc := range []struct {
		name          string
		cert, key     string
		status        Status
		summary, hint string
	}{
		{"valid", good.CertFile, good.KeyFile, OK, "issued to lab-07", ""},
		{"none configured", "", "", Skip, "no client certificate configured", ""},
		{"only the certificate", good.CertFile, "", Fail, "go together", "set both"},
		{"missing file", missing, good.KeyFile, Fail, "cannot read receiver.cert_file", "signed by the fleet CA with CN lab-07"},
		{"key of another certificate", good.CertFile, other.KeyFile, Fail, "not a certificate and its key", "CN lab-07"},
		{"issued to another host", other.CertFile, other.KeyFile, Fail, "issued to CN lab-99 (DNS lab-99), not to this host (lab-07)", "CN lab-07"},
		{"expired", expired.CertFile, expired.KeyFile, Fail, "expired on " + day(issued.Add(-time.Hour)), "renew it"},
		{"expires tomorrow", tomorrow.CertFile, tomorrow.KeyFile, Warn, "expires in 23h", "renew it before"},
		{"expires within two weeks", soon.CertFile, soon.KeyFile, Warn, "expires in 6 days", "renew it before " + day(issued.Add(7*24*time.Hour))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Config{Host: "lab-07", Receiver: config.Receiver{CertFile: tc.cert, KeyFile: tc.key}}
			c := checkClientCert(cfg, now)
			assert.Equal(t, tc.status, c.Status, c.Summary)
			assert.Contains(t, c.Summary, tc.summary)
			assert.Contains(t, c.Hint, tc.hint)
		})
	}
}
