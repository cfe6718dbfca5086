package config

import (
	"fmt"
	"io"
	"log/slog"
)

// OperatorMetrics (a job's key) makes every operator of a chain count
// the records and watermarks it emits (Flink's operator scope). Off by
// default: it costs an extra call per record per chained operator.
const OperatorMetrics = "metrics.operator.enabled"

// LogFormatEnv carries a daemon's --log-format to the processes it starts
// (TaskManagers, workers), which log in the same format.
const LogFormatEnv = "SPATE_LOG_FORMAT"

// Log formats of --log-format.
const (
	LogText = "text"
	LogJSON = "json"
)

// NewLogger returns a logger writing to w in format (LogText or LogJSON,
// LogText if empty), or an error naming the forms.
func NewLogger(format string, w io.Writer) (*slog.Logger, error) {
	switch format {
	case LogText, "":
		return slog.New(slog.NewTextHandler(w, nil)), nil
	case LogJSON:
		return slog.New(slog.NewJSONHandler(w, nil)), nil
	}
	return nil, fmt.Errorf("log format %q: want %s or %s", format, LogText, LogJSON)
}
