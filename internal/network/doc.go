// Package network is the data plane between the worker processes of one job:
// it carries the messages of exchanges (exec.Msg: encoded batches,
// watermarks, idleness, end of partition) from a producer's channel in one
// process to a consumer's inbox in another.
//
// # Connections
//
// Every worker process has one Endpoint: a TCP listener plus exactly one
// connection to each peer it exchanges streams with, used in both directions.
// The set of peers comes from the Send and Receive registrations. Of each
// pair, the endpoint with the smaller ID dials (retrying until
// Config.DialTimeout, since the peer may not listen yet) and the other
// accepts, so both agree on the single connection without negotiation.
//
// A connection starts with a handshake: the dialer sends HELLO (protocol
// version, its ID, the ID it means to reach, the job attempt it runs in)
// and the acceptor answers with its own HELLO. Either end rejects a wrong
// version, an unknown or unexpected peer, a second connection from the same
// peer, or a peer of another attempt of the job (a zombie left over from
// before a restart must not exchange data with the restored run), and Run
// fails with an error saying so.
//
// On a connection, streams are multiplexed: a stream is identified by its
// number, and its direction, so stream 3 from A to B and stream 3 from B to
// A are different streams.
//
// # Frames
//
// Every frame is a uint32 big-endian length of the rest, then a type byte,
// then the fields (all big-endian):
//
//	DATA       1  stream u32, channel i32, batch (the rest of the frame)
//	WATERMARK  2  stream u32, channel i32, wm i64
//	IDLE       3  stream u32, channel i32
//	END        4  stream u32, channel i32
//	CREDIT     5  stream u32, n u32
//	HELLO      6  version u32, from (u16 length, bytes), to (u16 length, bytes), attempt u64
//	BARRIER    7  stream u32, channel i32, checkpoint i64
//
// A BARRIER is a checkpoint's barrier (exec.MsgBarrier): it travels in band,
// in order with the records and watermarks of its channel, and costs a
// credit like them; the receiving task aligns it (see exec.Checkpointing).
//
// A length above Config.MaxFrame (or above a few hundred bytes before the
// handshake is done), a length wrong for the type, an unknown type, or a
// message for a stream that is not registered or already ended is a
// protocol error and fails the connection. Writes go through a bufio.Writer
// that is flushed whenever the outgoing queue runs empty, so small frames
// coalesce under load without adding latency when idle.
//
// # Credits
//
// Flow control is per (peer, stream). When the connection is up, the
// receiver grants Config.Credits credits for each stream it receives, and
// one more each time it has delivered a message into the stream's
// destination channel (grants are coalesced into CREDIT frames by the
// writer). Every frame except CREDIT (and HELLO) costs the sender one
// credit; a sender without credit stops reading its source channel, which
// fills and blocks the producer: that is how backpressure crosses processes.
// A sender exceeding its credit is a protocol error.
//
// The connection reader therefore never blocks: it puts a message straight
// into the destination channel if that has room and nothing of the stream
// waits before it, else it hands the message to the stream's queue, which
// can never hold more than Credits messages, and a per-stream goroutine
// delivers from that queue into the destination channel. A slow consumer
// stalls only its own stream, and the memory a receiver holds per stream is
// bounded by Credits messages. Every DATA frame is read into a freshly
// allocated buffer, so the []byte batch delivered in exec.Msg.Batch belongs
// to the receiver.
//
// The forwarders and the reader wake the connection's writer for the
// frames and grants they queued only when they are about to block. The Go
// scheduler runs the goroutine woken last first: woken earlier, the writer
// would wait behind the producer or consumer they wake next, which can run
// for a long time when the cores are busy, and credits would come back
// late.
//
// # Ending
//
// A send stream ends after forwarding as many END messages as it was told
// (one per local producer channel), a receive stream after delivering as
// many. When an endpoint has sent the last frame of every stream it sends on
// a connection and received the last END of every stream it receives, it
// flushes and half-closes the connection (TCP FIN), then keeps reading until
// the peer half-closes too. A connection is thus closed only once both ends
// are done with it, and no frame is lost to a reset. A connection that ends
// while streams on it are unfinished is a lost connection: Run fails with
// an error naming the peer and its address.
//
// # Goroutines
//
// Endpoint.Run starts and owns every goroutine: one forwarder per send
// stream, one deliverer per receive stream, per connection a reader (which
// also ran the handshake) and a writer, a dialer per peer it dials, and an
// accept loop while peers that dial it are missing. Run returns only after
// all of them have stopped. On the first error or when ctx ends, Run closes
// every connection, which unblocks the readers and writers; the forwarders
// and deliverers wait on ctx as well as on their channels, so nothing stays
// blocked on a full destination channel or on missing credit. The listener,
// opened by Listen, stays open until Close.
package network
