//go:build !linux

package web

import "time"

// threadCPU is not measured off Linux: the benchmark reports wall time only.
func threadCPU() time.Duration { return 0 }
