package spate

import (
	"fmt"
	"strings"
)

// The local Collect sink commits with checkpoints (TransactionalSinkWriter),
// so that a job restarted in-process from a checkpoint gathers every record
// once: a transaction is a batch of records kept in the Collected under a
// name "<subtask>/<attempt>/<n>", which the committable is.

// Begin implements TransactionalSinkWriter: it commits the restored
// transactions and drops this subtask's others, of earlier attempts.
func (w *collectWriter[T]) Begin(attempt int64, restored [][]byte) error {
	w.txn, w.attempt = true, attempt
	for _, c := range restored {
		if err := w.Commit(c); err != nil {
			return err
		}
	}
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	prefix := fmt.Sprintf("%d/", w.subtask)
	for name := range w.c.pending {
		if strings.HasPrefix(name, prefix) {
			delete(w.c.pending, name)
		}
	}
	return nil
}

// PrepareCommit implements TransactionalSinkWriter.
func (w *collectWriter[T]) PrepareCommit(int64) ([]byte, error) {
	if len(w.buf) == 0 {
		return nil, nil
	}
	name := fmt.Sprintf("%d/%d/%d", w.subtask, w.attempt, w.seq)
	w.seq++
	w.c.mu.Lock()
	if w.c.pending == nil {
		w.c.pending = map[string][]T{}
	}
	w.c.pending[name] = w.buf
	w.c.mu.Unlock()
	w.buf = nil
	return []byte(name), nil
}

// Commit implements TransactionalSinkWriter: the transaction's records
// become Values, once.
func (w *collectWriter[T]) Commit(c []byte) error {
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	if recs, ok := w.c.pending[string(c)]; ok {
		w.c.vals = append(w.c.vals, recs...)
		delete(w.c.pending, string(c))
	}
	return nil
}
