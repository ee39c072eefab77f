# The TypeScript SDK (clients/typescript), included by the root Makefile. Its tools
# (protoc-gen-es, tsc) and runtime (@bufbuild/protobuf, @connectrpc/connect-node) are pinned
# in clients/typescript/package.json and package-lock.json; buf is the root's.

TS_SDK := clients/typescript
TS_INSTALLED := $(TS_SDK)/node_modules/.installed

.PHONY: generate-typescript test-typescript

# Install exactly the locked versions, again whenever the lock file changes.
$(TS_INSTALLED): $(TS_SDK)/package-lock.json
	cd $(TS_SDK) && npm ci --no-audit --no-fund
	touch $@

# Messages and service descriptors in src/gen: the API (proto/) and the vendored google/rpc
# protos (status, and error_details, from which the SDK reads BadRequest and RequestInfo).
# The folder is made anew, so that a removed proto leaves no file behind.
generate-typescript: $(BUF) $(TS_INSTALLED)
	rm -rf $(TS_SDK)/src/gen
	$(BUF) generate --template $(TS_SDK)/buf.gen.yaml --path proto/forge --path third_party/googleapis/google/rpc

# Compile (src and test) to dist/ and run the tests, which start this repository's Python
# server: hence the virtual environment.
test-typescript: $(TS_INSTALLED) $(STAMP)
	rm -rf $(TS_SDK)/dist
	cd $(TS_SDK) && node_modules/.bin/tsc -p tsconfig.json && node --test dist/test/*.test.js
