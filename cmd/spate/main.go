// Command spate is Spate's command-line tool and its cluster daemons:
//
//	spate jobmanager [--rpc-port N] [--rest-port N] [--config F] [-D k=v]
//	spate taskmanager --jobmanager host:rpcport [--slots N]
//	spate run [--target local|remote|process-per-job|kubernetes-session|kubernetes-per-job] [--jobmanager host:restport] [-p N] [--detached] ./prog [args...]
//	spate session start --target process-session|kubernetes-session [--taskmanagers N] [--slots S]
//	spate session list | stop ID | prune
//	spate run-application --target process-application|kubernetes-application [-p N] [--detached] ./prog|local:///path [args...]
//	spate list [--all] [--output json]
//	spate cancel JOBID
//	spate savepoint JOBID [DIR]
//	spate stop JOBID [--savepoint DIR]
//	spate logs [--session ID] JOBID
//	spate info [-format json|dot] ./prog [args...]
//	spate nexmark --query q5 --events 10000000 --parallelism 2
//
// A program is a package path or directory (built with go build) or an
// executable. run starts it with the environment that tells its Execute
// where jobs go; info makes its Execute print each JobGraph instead.
package main

import (
	"errors"
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "nexmark":
		err = nexmark(os.Args[2:])
	case "info":
		err = info(os.Args[2:])
	case "run":
		err = run(os.Args[2:])
	case "list":
		err = list(os.Args[2:])
	case "cancel":
		err = cancel(os.Args[2:])
	case "savepoint":
		err = savepointCmd(os.Args[2:])
	case "stop":
		err = stop(os.Args[2:])
	case "run-application":
		err = runApplication(os.Args[2:])
	case "logs":
		err = logs(os.Args[2:])
	case "session":
		err = session(os.Args[2:])
	case "jobmanager":
		err = jobmanagerCmd(os.Args[2:])
	case "taskmanager":
		err = taskmanagerCmd(os.Args[2:])
	case "-h", "-help", "--help", "help":
		usage()
		return
	default:
		fmt.Fprintf(os.Stderr, "spate: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	var code exitCode
	if errors.As(err, &code) {
		os.Exit(int(code))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "spate:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, `usage: spate <command> [arguments]

commands:
  jobmanager [--rpc-port N] [--rest-port N]        run a JobManager (RPC 6123, REST 8081)
  taskmanager --jobmanager host:port [--slots N]   run a TaskManager that joins a JobManager
  run [--target local|remote] [--jobmanager host:port] [-p N] [--detached] [-s SAVEPOINT] ./prog [args...]
                                                   run a program's jobs here or on a cluster
  session start [--taskmanagers N] [--slots S]     start a session cluster of child processes
  session list [--output json] | session stop ID   list (dead ones too) or remove session clusters
  session prune                                    remove the dead sessions (their logs included)
  run-application [-p N] [--detached] ./prog [args...]
                                                   run a program's main in a cluster of its own
  list [--all] [--output text|json]                list a cluster's jobs
  cancel JOBID                                     cancel a job
  savepoint JOBID [DIR]                            take a savepoint of a job and print its path
  stop JOBID [--savepoint DIR]                     stop a job with a final savepoint (FINISHED)
  logs [--session ID] JOBID                        print a job's output kept by the TaskManagers
  info [-format json|dot] ./prog [args...]         print the plan of a program's jobs
  nexmark --query q0..q8|all --events N            run the Nexmark benchmark locally
    [--bootstrap-servers HOST:PORT --topic T]      ... over the events of a Kafka topic
  nexmark --produce --bootstrap-servers HOST:PORT --topic T --events N
                                                   load a Kafka topic with Nexmark events

Cluster commands take --config FILE and -D key=value (Flink's key names).
The kubernetes-session, kubernetes-per-job and kubernetes-application targets
run clusters as pods (docs/kubernetes.md).`)
}
