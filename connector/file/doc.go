// Package file provides bounded file sources and a file sink for Spate.
//
// Sources read every file once and then end with io.EOF:
//
//   - Lines reads each line of text files as a string.
//   - CSV decodes comma-separated rows into the fields of a struct.
//   - JSONLines decodes one JSON document per line (encoding/json).
//
// A source path may name a file, a directory (its regular, non-hidden files,
// sorted by name; subdirectories are not descended into) or a glob pattern as
// understood by path/filepath.Match. The resulting list of files keeps the
// order of the arguments, each directory or pattern contributing its matches
// sorted by name, with duplicates removed. With parallelism p, file i of that
// list is read by subtask i % p, so a split is deterministic and a file is
// always read whole by a single subtask.
//
// All three sources can be checkpointed: each file is a split, and a
// reader's position in it (byte offset and line of the next record, or
// that the file is done) is in the checkpoint, so that a restored job reads
// every record once. A CSV position is always a row boundary, however
// many lines its quoted cells span, and a resumed CSV file reads its header
// again to map the columns.
//
// A record that cannot be decoded (a CSV row with the wrong number of fields
// or an unparsable cell, a line that is not valid JSON) is returned from Read
// as a *spate.RecordError giving the file, the 1-based line number and the
// raw text of the record, after the good records that preceded it in the
// same call; the next Read continues with the record after it, so one bad
// record never loses good data. Errors of the file system (a file that
// cannot be opened or read) are returned as ordinary errors naming the file.
//
// Sink writes records as lines of text into part files, following the
// conventions of Flink's FileSink: each parallel subtask writes hidden
// in-progress files ".part-<subtask>-<counter>.inprogress" (a new one when
// the current has grown beyond the roll size) and renames them to
// "part-<subtask>-<counter>" only when the job has ended successfully. A
// failed or cancelled job leaves its in-progress files aside, hidden and
// never renamed, so that its partial output is never taken for a result.
// Because in-progress files are hidden, a Lines, CSV or JSONLines source
// pointed at a sink's directory reads only published part files. See Sink
// for what "ended successfully" means on a cluster.
package file
