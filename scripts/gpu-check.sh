#!/usr/bin/env bash
# The WebGPU trainer against PyTorch CUDA on one NVIDIA GPU (issue 12), in one run of under 10 minutes.
#
#   scripts/gpu-check.sh pack   here (Linux x86-64, `npm ci` done): writes .gpu-check/ (ignored by git, ~30 MB):
#                               this Node binary (xz), bench/train.ts bundled with esbuild, the node_modules
#                               files the bundle loads (TF.js core/cpu/wasm/webgpu, seedrandom, webgpu with
#                               Dawn for linux-x64 only) and Debian's Vulkan loader (.deb);
#   scripts/gpu-check.sh run    on the GPU machine (PyTorch with CUDA, no Node), from the repo root with
#                               .gpu-check/ beside it: unpacks, finds the NVIDIA Vulkan driver, then times
#                               the benchmark U-Net's training step (bench/train.ts: 3 levels, 16/32/64
#                               filters, batch 1, Adam) at 64^3 and 128^3 on webgpu and in PyTorch CUDA
#                               (fp32 without TF32, cuDNN autotuned) alternately, prints both and the
#                               ratio, then the seed-sized step (the product's 128^3 model, 5 levels,
#                               16..256, dropout, Dice + focal, through core/train) on webgpu against the
#                               same network in PyTorch CUDA, with the GPU memory TF.js holds. Each part has its own time limit; the whole fits
#                               in 10 minutes. With the device tool: command `bash scripts/gpu-check.sh run`,
#                               carry [".gpu-check"]; the logs are also written to $OUT when it is set.
set -euo pipefail
cd "$(dirname "$0")/.."
PACK=.gpu-check

pack() {
  [ "$(uname -m)" = x86_64 ] || { echo "pack on x86-64 Linux: the GPU machine is x86-64" >&2; exit 1; }
  rm -rf "$PACK"
  mkdir -p "$PACK/app/node_modules/@tensorflow" "$PACK/deb"
  # One ESM file; TF.js and Dawn stay outside so the bundle and tfjs-backend-webgpu share one tfjs-core.
  npx esbuild bench/train.ts --bundle --platform=node --format=esm --target=node20 --log-level=warning \
    --external:@tensorflow/* --external:webgpu \
    --banner:js="import { createRequire as __fedsegRequire } from 'node:module'; const require = __fedsegRequire(import.meta.url);" \
    --outfile="$PACK/app/bench-train.mjs"
  cp bench/torch_unet.py "$PACK/app/"
  local nm=node_modules
  for pkg in tfjs-core:tf-core tfjs-backend-cpu:tf-backend-cpu tfjs-backend-wasm:tf-backend-wasm tfjs-backend-webgpu:tf-backend-webgpu; do
    local name=${pkg%%:*} file=${pkg##*:}
    mkdir -p "$PACK/app/node_modules/@tensorflow/$name/dist"
    cp "$nm/@tensorflow/$name/package.json" "$PACK/app/node_modules/@tensorflow/$name/"
    cp "$nm/@tensorflow/$name/dist/$file.node.js" "$PACK/app/node_modules/@tensorflow/$name/dist/"
  done
  cp -r "$nm/seedrandom" "$PACK/app/node_modules/"
  mkdir -p "$PACK/app/node_modules/webgpu/dist/linux-x64"
  cp "$nm/webgpu/package.json" "$nm/webgpu/index.js" "$PACK/app/node_modules/webgpu/"
  cp "$nm/webgpu/dist/linux-x64/dawn.node" "$PACK/app/node_modules/webgpu/dist/linux-x64/"
  tar -C "$PACK" -cf - app | xz -T0 -6 > "$PACK/app.tar.xz"
  rm -rf "$PACK/app"
  xz -T0 -6 -c "$(command -v node)" > "$PACK/node.xz"
  (cd "$PACK/deb" && apt-get download libvulkan1 >/dev/null)
  du -sh "$PACK"
}

run() {
  [ -f "$PACK/app.tar.xz" ] || { echo "$PACK/ is missing: run 'scripts/gpu-check.sh pack' first and carry it" >&2; exit 1; }
  local work=/tmp/fedseg-gpu-check out=${OUT:-/tmp/fedseg-gpu-check/out}
  rm -rf "$work" && mkdir -p "$work/bin" "$out"
  xz -dc "$PACK/node.xz" > "$work/bin/node" && chmod +x "$work/bin/node"
  tar -C "$work" -xJf "$PACK/app.tar.xz"
  export PATH="$work/bin:$PATH"
  if ! ldconfig -p | grep -q 'libvulkan.so.1'; then
    for deb in "$PACK"/deb/*.deb; do dpkg -x "$deb" /; done
    ldconfig
  fi
  # Where the NVIDIA container runtime mounts the driver, the loader does not look by itself.
  local icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  if [ -f "$icd" ] && [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ]; then export VK_DRIVER_FILES=$icd; fi
  echo "node $(node --version); $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo 'nvidia-smi not found')"
  local bench=(node "$work/app/bench-train.mjs" --backend webgpu --torch-device cuda --no-big)
  # Time limits: 64^3 2.5 min, 128^3 4 min, the product's model 2.5 min (shader compilation included).
  timeout 150 "${bench[@]}" --size 64 --steps 5 2>&1 | tee "$out/train-64.log" || echo "64^3 run failed or timed out (exit $?)"
  timeout 240 "${bench[@]}" --size 128 --steps 3 2>&1 | tee "$out/train-128.log" || echo "128^3 run failed or timed out (exit $?)"
  timeout 150 node "$work/app/bench-train.mjs" --big --backend webgpu --torch-device cuda 2>&1 | tee "$out/big-128.log" || echo "product model run failed or timed out (exit $?)"
}

case "${1:-}" in
  pack) pack ;;
  run) run ;;
  *) echo "usage: scripts/gpu-check.sh pack|run" >&2; exit 2 ;;
esac
