# The Go SDK (clients/go), included by the root Makefile. Generated with Debian 12's protoc,
# protoc-gen-go and protoc-gen-go-grpc; built and tested offline against the Go sources of
# Debian's golang-*-dev packages (clients/go/tools/offline-env.sh), which
# clients/go/tools/debian-packages.sh installs when any is missing.

GO_SDK := clients/go
GO_MODULE := github.com/forge-training/forge-training/clients/go
# The generated files name the versions that made them: Debian's binaries, so that a
# protoc or plugin elsewhere on PATH cannot change them.
GO_PROTOC ?= /usr/bin/protoc
GO_PROTOC_PLUGINS ?= /usr/bin

.PHONY: go-packages generate-go test-go

go-packages:
	$(GO_SDK)/tools/debian-packages.sh

# The protos' go_package options put the code in clients/go/forge/training/v1 (package
# trainingv1); google/rpc/status.proto maps to genproto's package by its own go_package.
generate-go: go-packages
	rm -f $(GO_SDK)/forge/training/v1/*.pb.go
	$(GO_PROTOC) -Iproto -Ithird_party/googleapis \
		--plugin=protoc-gen-go=$(GO_PROTOC_PLUGINS)/protoc-gen-go \
		--go_out=$(GO_SDK) --go_opt=module=$(GO_MODULE) \
		--plugin=protoc-gen-go-grpc=$(GO_PROTOC_PLUGINS)/protoc-gen-go-grpc \
		--go-grpc_out=$(GO_SDK) --go-grpc_opt=module=$(GO_MODULE) \
		proto/forge/training/v1/*.proto

# The tests start this repository's Python server, hence the virtual environment.
test-go: go-packages $(STAMP)
	cd $(GO_SDK) && . tools/offline-env.sh && go vet ./... && go test -count=1 -timeout 5m ./...
