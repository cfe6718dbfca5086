package config

import (
	"fmt"
	"io"
	"log/slog"
)

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
