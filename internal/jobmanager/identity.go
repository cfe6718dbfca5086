package jobmanager

import "fmt"

// exitHint explains the clean exit of job j's worker workerID before it
// reported ready: the program, run again by the worker, ended without
// reaching the job's Execute/ExecuteAsync call, so it is not the same
// program run the same way (v1.JobSubmitRequest.JobOrdinal). It is empty
// for any other exit.
func exitHint(j *job, workerID string, exitCode int32) string {
	if exitCode != 0 {
		return ""
	}
	for _, w := range j.workers {
		if w.id == workerID && w.addr == "" {
			return fmt.Sprintf(" before it was ready: run again with the job's arguments, the program ended without reaching Execute/ExecuteAsync call #%d, which made the job; "+
				"main must be deterministic, making the same calls in the same order for the same arguments (is main non-deterministic, or the program not a Spate program?)", j.ordinal)
		}
	}
	return ""
}
