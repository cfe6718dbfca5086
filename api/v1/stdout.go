package v1

import "strings"

// OutputRotated begins the first line of GET /v1/taskmanagers/{id}/stdout
// when older output of that TaskManager rotated out of the memory it keeps
// it in. The line goes on to say how much, and ends with
// OutputFileMarker and the path of the file that holds all of the
// TaskManager's output, when the TaskManager writes to one.
const OutputRotated = "[spate] output rotated:"

// OutputFileMarker precedes the path of a TaskManager's output file at the
// end of an OutputRotated line.
const OutputFileMarker = "; all of it is in "

// RotatedOutput reports whether a TaskManager's stdout text lost older
// output, and the path of the file that kept it all ("" if none).
func RotatedOutput(text string) (rotated bool, file string) {
	first, _, _ := strings.Cut(text, "\n")
	if !strings.HasPrefix(first, OutputRotated) {
		return false, ""
	}
	if i := strings.LastIndex(first, OutputFileMarker); i >= 0 {
		file = first[i+len(OutputFileMarker):]
	}
	return true, file
}
