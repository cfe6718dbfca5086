package spate

import (
	"github.com/spate-dev/spate/internal/checkpoint"
	"github.com/spate-dev/spate/internal/localexec"
)

// RestoreLocal makes e's next local run start from checkpoint m, which may
// have been taken at other parallelisms; completed (if set) hears of each
// checkpoint the run completes, ran of its end.
func RestoreLocal(e *Env, m *checkpoint.Metadata, completed func(id int64), ran func(localexec.Stats)) {
	e.local = localRestore{restore: m, completed: completed, ran: ran}
}
