# Sourced by .ci/run: a local Ray head (this machine's 2 CPUs) for the --executor ray tests
# (FORGE_TEST_RAY_ADDRESS), from the project's own environment. Stopped by stop_ray.

start_ray() {
  RAY=.venv/bin/ray
  # A one-node cluster on loopback only: Ray otherwise swaps 127.0.0.1 for this machine's own
  # network address (the variable is named for the platforms where that is the default).
  export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
  RAY_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$RAY" start --head --node-ip-address 127.0.0.1 --port "$RAY_PORT" --num-cpus 2 \
    --include-dashboard=false --disable-usage-stats >/dev/null
  export FORGE_TEST_RAY_ADDRESS="127.0.0.1:$RAY_PORT"
  echo "Ray $("$RAY" --version | awk '{print $NF}') head on $FORGE_TEST_RAY_ADDRESS"
}

stop_ray() {
  if [ -n "${FORGE_TEST_RAY_ADDRESS:-}" ]; then
    "$RAY" stop --force >/dev/null 2>&1 || true
  fi
}
