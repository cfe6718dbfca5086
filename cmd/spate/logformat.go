package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/spate-dev/spate/internal/config"
)

// logFormatFlag registers --log-format on a daemon's flags; its default is
// $SPATE_LOG_FORMAT (set by the daemon that started this one), else text.
func logFormatFlag(fs *flag.FlagSet) *string {
	def := os.Getenv(config.LogFormatEnv)
	if def == "" {
		def = config.LogText
	}
	return fs.String("log-format", def, "format of the log on standard error: text or json (also for the TaskManagers and workers this process starts)")
}

// daemonLogger makes the daemon's logger in format, the default logger
// too, and passes the format on to the processes the daemon starts.
func daemonLogger(daemon, format string) (*slog.Logger, error) {
	l, err := config.NewLogger(format, os.Stderr)
	if err != nil {
		return nil, fmt.Errorf("%s: --log-format: %w", daemon, err)
	}
	slog.SetDefault(l)
	os.Setenv(config.LogFormatEnv, format)
	return l, nil
}
