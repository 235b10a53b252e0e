#!/usr/bin/env python3
"""PyTorch reference for `fedseg bench train`: the same 3D U-Net training step as core/model.

Architecture (identical to core/model's 'unet' with upsampling 'nearest', no dropout): per encoder
level two 3x3x3 'same' convolutions + bias + ReLU, 2x2x2 max-pool between levels; per decoder level
nearest x2 upsampling + 3x3x3 conv + bias, concatenation [up, skip], two 3x3x3 conv + ReLU; 1x1x1
head to the classes, softmax, categorical cross-entropy, Adam (lr 1e-3). Batch 1.

Driven over stdin/stdout so the benchmark can alternate it with TF.js steps:
  prints 'ready <json>' once warmed up; then each input line 'step' runs one training step and
  prints 'step <seconds>'; 'quit' (or EOF) exits.

--device cuda runs on the GPU in strict fp32 (TF32 off, so it computes what the WebGPU trainer
computes) with cuDNN's autotuned convolutions; loss.item() waits for the step, as TF.js's read does.
"""
import argparse
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = nn.Conv3d(cin, cout, 3, padding=1)
        self.conv2 = nn.Conv3d(cout, cout, 3, padding=1)

    def forward(self, x):
        return F.relu(self.conv2(F.relu(self.conv1(x))))


class UNet3D(nn.Module):
    def __init__(self, in_channels, classes, base, depth):
        super().__init__()
        filters = [base * 2**level for level in range(depth)]
        self.enc = nn.ModuleList(
            Block(in_channels if level == 0 else filters[level - 1], f) for level, f in enumerate(filters)
        )
        self.up = nn.ModuleList(nn.Conv3d(filters[level + 1], filters[level], 3, padding=1) for level in range(depth - 1))
        self.dec = nn.ModuleList(Block(2 * filters[level], filters[level]) for level in range(depth - 1))
        self.head = nn.Conv3d(filters[0], classes, 1)

    def forward(self, x):
        skips = []
        for level, block in enumerate(self.enc):
            x = block(x)
            if level < len(self.enc) - 1:
                skips.append(x)
                x = F.max_pool3d(x, 2)
        for level in reversed(range(len(self.dec))):
            up = self.up[level](F.interpolate(x, scale_factor=2, mode="nearest"))
            x = self.dec[level](torch.cat([up, skips[level]], dim=1))
        return torch.softmax(self.head(x), dim=1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--in-channels", type=int, default=3)
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--base", type=int, default=16)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    model = UNet3D(args.in_channels, args.classes, args.base, args.depth).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    s = args.size
    x = torch.rand(1, args.in_channels, s, s, s, device=device)
    labels = torch.randint(0, args.classes, (1, s, s, s), device=device)
    onehot = F.one_hot(labels, args.classes).permute(0, 4, 1, 2, 3).float()

    def step():
        optimizer.zero_grad(set_to_none=True)
        probs = model(x)
        loss = -(onehot * torch.log(probs + 1e-7)).sum(dim=1).mean()
        loss.backward()
        optimizer.step()
        return loss.item()

    for _ in range(args.warmup):
        step()
    info = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "device": torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu",
        "cudnn": torch.backends.cudnn.version() if args.device == "cuda" else None,
        "peak_gpu_mib": round(torch.cuda.max_memory_allocated() / 2**20) if args.device == "cuda" else None,
        "python": sys.version.split()[0],
    }
    print("ready " + json.dumps(info), flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "quit":
            break
        if command != "step":
            print("error unknown command " + command, flush=True)
            continue
        started = time.perf_counter()
        step()
        print(f"step {time.perf_counter() - started:.6f}", flush=True)


if __name__ == "__main__":
    main()
