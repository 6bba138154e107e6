// Command cis490 is the lab fleet's one binary: receiver, shipper, doctor and more.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/cis490/cis490/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], cli.Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
	stop()
	os.Exit(code)
}
