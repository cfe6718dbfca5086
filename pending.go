package spate

// PendingReader is a SourceReader that knows how much of its split it has
// left to read. The runtime asks it after each read and shows the figures
// as the source's pendingRecords and pendingBytes metrics (Flink's
// FLIP-33 names); -1 stands for a figure the reader does not know. The
// generator (datagen) knows its records left, the file sources their
// bytes left.
type PendingReader interface {
	Pending() (records, bytes int64)
}
