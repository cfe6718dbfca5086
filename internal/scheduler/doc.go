// Package scheduler is the resource manager's slot scheduling, as a pure
// state machine: which TaskManager slots each job's workers get, the queue
// of jobs waiting for slots (with backfill: a job that does not fit holds
// up none behind it), how many TaskManagers to ask a provider for, which
// idle ones to stop, and the jobs that waited longer than
// slot.request.timeout.
//
// Every method takes one event with the time it happened: a job asks for
// slots (its first deployment, or a restart's), a TaskManager registered
// or was lost, a job's workers freed their slots, a job left the queue, a
// provider's TaskManager ended, a timer tick. It returns the effects the
// caller must carry out: Allocate slots to a job (deploy its workers
// there), StartTaskManager, StopTaskManager, FailJob. It has no sockets,
// no goroutines and no clock: the JobManager (internal/jobmanager) feeds
// it under its lock and performs the effects; the tests feed it scripts
// (testdata/*.txt) and compare its effects with golden files.
//
// The scheduler's state is updated before it returns, so a caller may
// feed it further events while it carries out effects (an effect's
// consequences are events too). An Allocate has already taken the slots;
// a FailJob has already removed the job from the queue.
//
// A job's life in the scheduler:
//
//	Submit / Requeue ──▶ QUEUED ──enough free slots, in queue order──▶ ALLOCATED (Allocate)
//	                       │  (one worker per TaskManager, in registration order)
//	                       ├──slot.request.timeout passed──▶ gone (FailJob)
//	                       ├──a TaskManager started for it ended before registering──▶ gone (FailJob)
//	                       └──Dequeue──▶ gone
//	ALLOCATED ──Free (per TaskManager) / FreeJob / TaskManager lost──▶ slots free again
//
// Slot sharing is Flink's default: a job needs as many slots as its widest
// vertex, and subtask s of every vertex runs in the job's slot s.
package scheduler
