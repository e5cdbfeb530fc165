# Sourced by the scripts that run on a GPU machine without TensorFlow (gpu.sh,
# g2p_gpu.sh), from the repository root: `gpu_env NAME BACKEND WHEELS...` checks
# the backend (jax or torch), installs the wheels in .whl/ into /tmp/site, puts
# them and the repository on PYTHONPATH, sets KERAS_BACKEND and prints the GPU.
# WHEELS name what benchmarks/fetch_wheels.sh must fetch beside Keras, for the
# error message.
gpu_env() {
  local name=$1 backend=$2
  shift 2
  case "$backend" in
    jax|torch) ;;
    *) echo "$name: expected the backend jax or torch first. Received: '$backend'." >&2
       return 2 ;;
  esac
  local wheels
  wheels=(.whl/*.whl)
  if [ ! -e "${wheels[0]}" ]; then
    echo "$name: no wheels in .whl/; run 'bash benchmarks/fetch_wheels.sh $*'" \
         "on a machine with internet access and copy .whl/ with the repository" >&2
    return 2
  fi
  "${PYTHON:-python3}" -m pip install -q --no-index --no-deps --upgrade --target /tmp/site \
    "${wheels[@]}" || return
  export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH} KERAS_BACKEND=$backend
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  fi
}
