// Package kafka reads and writes Apache Kafka topics, as Flink's Kafka
// connector does, with the franz-go client (kgo). docs/kafka.md maps
// Flink's options to this package's.
//
// # Source
//
// NewSource reads topics by name or by a regular expression. Each
// partition is a split (Flink's FLIP-27); reader i of p reads the
// partitions Flink's KafkaSourceEnumerator would give it, so no
// coordinator is needed: each reader lists the topics when it opens and
// every SourceConfig.DiscoveryInterval, and starts reading the new
// partitions it owns (from their earliest offset: they are new). The
// reader consumes its partitions directly; it never joins the consumer
// group. Restored at another parallelism, every reader gets every
// partition's split (the Source is a spate.UnionSplits) and resumes those
// it owns at the new parallelism, so that a partition is never read twice
// nor taken for a new one.
//
// Where it starts: at its first start, by StartupMode (Flink's
// scan.startup.mode), resolved to concrete offsets at once, so that a
// checkpoint taken before a partition's first record still holds where it
// started. At a restore, at the checkpointed offsets exactly (each split's
// position is the offset of the next record to emit, after the records
// emitted before the barrier), whatever the startup mode.
//
// Records carry their Kafka timestamps, and the reader is a
// spate.EventReader: with a watermark strategy the runtime runs its
// generator per partition and the reader's watermark is the least of its
// partitions' (idle partitions excluded with WithIdleness; a reader whose
// partitions are all idle is idle), as Flink's per-split watermarks.
//
// The reader takes the slices kgo decodes records into from a pool and
// recycles each record once its Deserializer has returned (see
// recordPool): a Deserializer never sees the kgo.Record, and the bytes
// it shares are the fetch's, never reused. That halves what a plain kgo
// loop allocates per record; docs/kafka.md has the figures.
//
// A record the Deserializer refuses is a *spate.RecordError whose Source
// is "kafka topic T partition P offset O": the job fails with it, or, if
// the job consumes spate.SideOutput(stream, spate.RecordErrors), it goes
// there and the reader goes on.
//
// With SourceConfig.BoundedMode (scan.bounded.mode) the source is
// bounded: each partition stops at an offset fixed at the first start
// (kept in the split's position, so a restore stops there too), and the
// reader ends with io.EOF once all have. A partition that has stopped
// still counts for watermarks until the reader ends.
//
// When a checkpoint completes, the reader commits its offsets in it to
// SourceConfig.GroupID (unless NoOffsetCommit), so that tools show the
// job's lag; the job itself never reads them back, except with
// StartGroupOffsets.
//
// # Sink
//
// NewSink writes records made by a Serializer, with a key, headers and a
// partition chosen by the Partitioner (key hash as Kafka's Java client,
// round robin, fixed per subtask, the record's own, or a function), with
// one of three delivery guarantees (sink.delivery-guarantee):
//
//   - none: records are sent as they come.
//   - at-least-once: at each checkpoint's barrier the writer waits until
//     Kafka has acknowledged every record sent before it, so a restore
//     from that checkpoint loses nothing; what was written after it is
//     written again.
//   - exactly-once: records are written in Kafka transactions, one per
//     checkpoint, committed when that checkpoint completes; a
//     read_committed consumer sees each record once.
//
// # Exactly-once: the transactions
//
// The writer is a spate.TransactionalSinkWriter (docs/sinks.md):
//
//	Write ─▶ open transaction T(n) on a free id ─barrier n─▶ PrepareCommit: flush T(n), committable (id, producer id, epoch)
//	                                                          └─▶ the next Write opens T(n+1) on another id
//	checkpoint n complete ─▶ Commit: EndTxn(commit) with T(n)'s id, producer id and epoch; T(n)'s id is free again
//	restore of checkpoint n ─▶ Begin: EndTxn(commit) for each restored committable the writer takes over,
//	                                  then InitProducerID for every other open transaction of those subtasks' ids (abort)
//
// The difficulty is the commit after a restart: the process that opened
// T(n) is gone, and Kafka lets only the producer that owns a transactional
// id end its transaction. Flink resumes the producer by setting its
// producer id and epoch through reflection; kgo has no such call. Instead
// every commit, in the normal course as after a restore, is one EndTxn
// request sent through kmsg with the transaction's saved transactional
// id, producer id and epoch: the transaction coordinator checks only those
// three, so any client may send it. The protocol is then correct because
// of how the transactional ids are chosen:
//
//   - A transactional id is "<sink.transactional-id-prefix>-<subtask>-
//     <attempt>-<nonce>-<slot>": each run of a subtask (attempt and a
//     random nonce) has a pool of ids of its own, as Flink's POOLING
//     naming strategy has. A transaction takes the lowest free slot, and
//     a slot is free again once its transaction is committed, so a run
//     uses as many ids as it has transactions open or pre-committed at
//     once (two or three, with one checkpoint at a time), however long
//     it runs; the broker keeps an id's state until
//     transactional.id.expiration.ms (7 days) after its last use, so its
//     transactional state is bounded by the pool's size times the runs of
//     those days. Other runs, zombies included, never use this run's ids.
//   - Every transaction has a client of its own, whose InitProducerID gives
//     the id a new epoch. So (id, producer id, epoch) names exactly one
//     transaction, and an EndTxn(commit) for it can only ever commit that
//     transaction's records: an id's later transaction has a later epoch,
//     and the coordinator refuses the old one as fenced.
//   - Committing again is idempotent: once a transaction is committed,
//     the coordinator answers a repeated EndTxn(commit) with the same
//     producer id and epoch (or, with KIP-890, the epoch before the bump
//     the commit made) as a retry, with success. A restore can therefore
//     commit the restored checkpoint's committables however many times the
//     job restores it, and a commit interrupted between its effect and its
//     acknowledgement can be repeated. If the id has been reused since
//     (the checkpoint completed, the earlier run committed the transaction
//     and opened another on its id), the coordinator answers the repeated
//     commit PRODUCER_FENCED: the transaction was committed, as only a
//     committed transaction's id is reused, and the restore goes on, as
//     Flink's committer does.
//   - Lingering transactions, those opened or pre-committed after the
//     restored checkpoint by an earlier attempt (a failed process, or a
//     zombie that still runs), are found with ListTransactions (state
//     Ongoing, ids of the subtasks the writer takes over) once the
//     restored committables are committed, and aborted by InitProducerID
//     on their ids: that aborts the open transaction and fences its
//     producer, so a zombie cannot write into it any more. Their records
//     are written again by the restored job.
//
// A restore at another parallelism p: writer i takes over the old
// subtasks j with j mod p = i (its own among them). The Sink is a
// spate.UnionCommittables, so every writer's Begin sees every old
// subtask's committables; each commits those of the subtasks it takes
// over and aborts what those left open, and no other writer touches their
// ids, so no writer can abort a transaction another is about to commit.
// The source's readers resume the partitions they own at p (see Source).
//
// What must hold: the transaction timeout (SinkConfig.TransactionTimeout,
// 15 minutes by default, the largest a broker allows unless its
// transaction.max.timeout.ms is raised) exceeds the time from a
// checkpoint's barrier to the commit of a recovery, or the broker aborts a
// pre-committed transaction and its records are lost; the commit then
// fails saying so. (A broker without KIP-890's epoch bumps answers a
// commit after such an abort as after its id's reuse, PRODUCER_FENCED,
// which the restore takes for committed: Flink's committer, which reads
// it so too, has the same rule.) The prefix must be unique to the job,
// and no other job's prefix may be it followed by "-<number>".
//
// kfake, the in-process cluster the tests use, completes a transaction
// synchronously at EndTxn; a real broker writes the markers after
// answering (PrepareCommit), so a consumer may see the records a moment
// after Commit returns, and an InitProducerID racing a completion is
// answered CONCURRENT_TRANSACTIONS, which the writer retries.
//
// Without checkpoints (a bounded job), an exactly-once writer writes one
// transaction, committed when the job ends successfully and aborted
// otherwise.
package kafka
