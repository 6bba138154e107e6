package objstore_test

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/cis490/cis490/internal/config"
	"github.com/cis490/cis490/internal/objstore"
	"github.com/cis490/cis490/internal/objstore/objstoretest"
)

func TestZZTiming(t *testing.T) {
	if os.Getenv("ZZ") == "" {
		t.Skip()
	}
	tg := objstoretest.Versitygw(t)
	data, sha := body(t, 512<<20)
	for i := 0; i < 8; i++ {
		cfg := tg.Storage(t, "pi-1/")
		cfg.PartSize = []config.ByteSize{8 << 20, 32 << 20, 64 << 20, 128 << 20}[i%4]
		st, err := objstore.New(cfg, objstore.Options{Logger: zerolog.New(zerolog.NewTestWriter(t))})
		require.NoError(t, err)
		require.NoError(t, st.Start(t.Context()))
		t.Log("part", cfg.PartSize)
		t0 := time.Now()
		_, err = st.PutEpisode(t.Context(), host+string(rune('a'+i)), sha, bytes.NewReader(data), 1<<30, meta("ep", int64(len(data))))
		require.NoError(t, err)
		t.Logf("put %d: %v", i, time.Since(t0))
	}
}
