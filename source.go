package spate

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
)

// Source produces the records of a stream. A source is split among the
// parallel subtasks of its operator: Open is called once per subtask and
// returns the reader for that subtask's share of the data.
type Source[T any] interface {
	// Open creates the reader of one parallel subtask.
	Open(ctx context.Context, split Split) (SourceReader[T], error)
}

// Split tells a source which share of its data a subtask reads.
type Split struct {
	// Subtask is the index of the reading subtask, in [0, Parallelism).
	Subtask int
	// Parallelism is the number of parallel readers.
	Parallelism int
}

// SourceReader reads the records of one split.
type SourceReader[T any] interface {
	// Read fills buf with up to len(buf) records and returns how many it
	// wrote. It returns io.EOF (with n == 0) when the split is exhausted. A
	// reader with nothing available yet returns (0, nil) rather than blocking
	// for long, so that the runtime can flush, detect idleness and stop. A
	// malformed record is reported as a *RecordError after the records read
	// before it; the runtime routes it to the stream's error output if one is
	// configured and fails the job otherwise.
	Read(ctx context.Context, buf []T) (n int, err error)
	// Close releases the reader's resources.
	Close() error
}

// RecordError reports a malformed input record: where it was and why it could
// not be decoded. Sources return it from Read; it reaches the job's error or,
// when configured with ErrorOutput, the stream's error side output.
type RecordError struct {
	// Source names the input, for files its path.
	Source string
	// Line is the 1-based line number of the record, 0 if not line-based.
	Line int64
	// Record is the raw text of the record, truncated to a readable length.
	Record string
	// Err is the cause.
	Err error
}

func (e *RecordError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: malformed record: %v", e.Source, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: malformed record: %v", e.Source, e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }

// MarshalBinary encodes the error so that it can cross a process boundary
// (to an error side output in another process). The cause travels as its
// message: errors.Is identity does not survive the trip.
func (e RecordError) MarshalBinary() ([]byte, error) {
	msg := ""
	if e.Err != nil {
		msg = e.Err.Error()
	}
	b := binary.AppendUvarint(nil, uint64(len(e.Source)))
	b = append(b, e.Source...)
	b = binary.AppendVarint(b, e.Line)
	b = binary.AppendUvarint(b, uint64(len(e.Record)))
	b = append(b, e.Record...)
	return append(b, msg...), nil
}

// UnmarshalBinary decodes what MarshalBinary encoded.
func (e *RecordError) UnmarshalBinary(b []byte) error {
	str := func() (string, error) {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return "", fmt.Errorf("decode record error: malformed string")
		}
		s := string(b[k : k+int(n)])
		b = b[k+int(n):]
		return s, nil
	}
	src, err := str()
	if err != nil {
		return err
	}
	line, k := binary.Varint(b)
	if k <= 0 {
		return fmt.Errorf("decode record error: malformed line")
	}
	b = b[k:]
	rec, err := str()
	if err != nil {
		return err
	}
	*e = RecordError{Source: src, Line: line, Record: rec, Err: errors.New(string(b))}
	return nil
}

// Sink consumes the records of a stream. Like a source it is opened once
// per parallel subtask.
type Sink[T any] interface {
	// Open creates the writer of one parallel subtask.
	Open(ctx context.Context, info SinkInfo) (SinkWriter[T], error)
}

// SinkInfo tells a sink writer which subtask it serves.
type SinkInfo struct {
	// Subtask is the index of the writing subtask, in [0, Parallelism).
	Subtask int
	// Parallelism is the number of parallel writers.
	Parallelism int
	// JobName is the name given to Execute.
	JobName string
}

// SinkWriter writes the records of one sink subtask.
//
// Close tells the writer how the job ended, so that a sink never publishes
// the partial output of a failed or cancelled job as its result: it is
// called once, after the last Write, with nil only if the job ended
// successfully as far as this process can tell (every subtask in the
// process exhausted its bounded input, and no subtask failed and nothing
// stopped the job), and otherwise with the reason. On nil the writer
// publishes what it wrote (flush, sync, rename its files to their final
// names, commit its transaction) and reports a failure to do so as its
// error, which fails the job. On an error it releases its resources
// without publishing anything: it discards, aborts or leaves aside its
// uncommitted output, and returns nil unless releasing failed.
//
// On a cluster "successfully" is the whole job's: a worker closes its
// writers with nil only once the JobManager has seen every subtask of the
// job, in every worker, finish. What remains until checkpoints bring
// two-phase commit is a failure while publishing: a worker whose own
// publishing fails, after another worker has published.
type SinkWriter[T any] interface {
	// Write consumes one record.
	Write(v T) error
	// Close publishes the output if err is nil and releases the writer;
	// see the type's documentation.
	Close(err error) error
}
