package webrtc

import (
	"github.com/pion/logging"
	"github.com/rs/zerolog"
)

// pionLogs routes pion's internal logs into the peer's zerolog logger
// (with its call_id), one level down: pion's info lines are per-state
// chatter, its warnings are mostly expected on a closing peer. Without it
// pion prints to stderr.
type pionLogs struct{ log zerolog.Logger }

var _ logging.LoggerFactory = pionLogs{}

// NewLogger returns a logger for one pion subsystem.
func (f pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{log: f.log.With().Str("pion", scope).Logger()}
}

type pionLogger struct{ log zerolog.Logger }

func (l pionLogger) Trace(msg string)                  { l.log.Trace().Msg(msg) }
func (l pionLogger) Tracef(format string, args ...any) { l.log.Trace().Msgf(format, args...) }
func (l pionLogger) Debug(msg string)                  { l.log.Trace().Msg(msg) }
func (l pionLogger) Debugf(format string, args ...any) { l.log.Trace().Msgf(format, args...) }
func (l pionLogger) Info(msg string)                   { l.log.Debug().Msg(msg) }
func (l pionLogger) Infof(format string, args ...any)  { l.log.Debug().Msgf(format, args...) }
func (l pionLogger) Warn(msg string)                   { l.log.Info().Msg(msg) }
func (l pionLogger) Warnf(format string, args ...any)  { l.log.Info().Msgf(format, args...) }
func (l pionLogger) Error(msg string)                  { l.log.Warn().Msg(msg) }
func (l pionLogger) Errorf(format string, args ...any) { l.log.Warn().Msgf(format, args...) }
