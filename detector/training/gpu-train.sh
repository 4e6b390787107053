#!/usr/bin/env bash
# Train on the borrowed GPU machine from the carried pack and wheels, and send the run back.
# Run there from the repository root, as the device call's command (detector/training/GPU.md):
#   bash detector/training/gpu-train.sh --check        install the wheels, import the trainer, show the GPU
#   bash detector/training/gpu-train.sh [HOURS]        train detector/training/gpu.yaml, for HOURS if given
# GPU_CONFIG names another training YAML (a dry run here uses one with device: cpu).
# $OUT receives the log, the weights, results.csv and summary.json, also when training fails part-way.
set -uo pipefail
out=${OUT:?OUT is set by the device call: run this there, or set OUT to a folder}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || { echo "installing the carried wheels failed: fetch them into .whl/ (GPU.md, step 2)"; exit 1; }
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
if [ "${1:-}" = "--check" ]; then
  ls -la .gpu-pack
  # The check's verdict is the import's: a missing package must fail the call before the parts are carried.
  python3 -c "import torch, detector.training.train as t; print('trainer imports; cuda:', torch.cuda.is_available())"
  exit $?
fi
# The config with the time budget of this call, if one is given (the device minutes left decide it).
config=/tmp/gpu.yaml
run=$(python3 - "${GPU_CONFIG:-detector/training/gpu.yaml}" "${1:-}" "$config" <<'PY'
import sys, yaml
given, hours, written = sys.argv[1:]
config = yaml.safe_load(open(given))
if hours:
    config["hours"] = float(hours)
yaml.safe_dump(config, open(written, "w"))
print(f"{config.get('run_dir', 'runs/train')}/{config['name']}")
PY
) || exit 1
echo "training into $run for $(grep '^hours' $config)"
python3 -m detector.training --config "$config" > "$out/train.log" 2>&1
status=$?
tail -n 40 "$out/train.log"
for file in "$run/weights/best.pt" "$run/weights/last.pt" "$run/results.csv" "$run/summary.json" "$run/args.yaml"; do
  [ -f "$file" ] && cp "$file" "$out/"
done
ls -la "$out"
exit $status
