// Package rpcpb holds the protobuf messages and gRPC stubs of Spate's control
// plane, generated from control.proto.
package rpcpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative control.proto
