#!/usr/bin/env python3
"""PyTorch reference for `fedseg bench train`: the same 3D U-Net training step as core/model.

Architecture (identical to core/model's 'unet'): per encoder level two 3x3x3 'same' convolutions +
bias + ReLU with dropout (rate per level, --dropout) between them, 2x2x2 max-pool between levels; per
decoder level x2 upsampling (--upsampling transpose: ConvTranspose3d(2, stride 2) + bias, as Keras's
Conv3DTranspose; nearest: nearest x2 + 3x3x3 conv + bias), concatenation [up, skip], the same block
with that level's dropout; 1x1x1 head to the classes. Batch 1.
Loss (--loss): 'ce' is softmax + categorical cross-entropy (the issue-6 benchmark); 'dice-focal' is
core/train/loss.ts's segmentationLoss from the logits: 1 - mean soft Dice over classes (sums over batch
and space, smooth 1e-5, class weights 0.25 each) + categorical focal loss (alpha 0.25, gamma 2, mean
over voxels and classes, log p = log_softmax). Adam with --lr and --eps (core/train: 1e-4, 1e-7).

Driven over stdin/stdout so the benchmark can alternate it with TF.js steps:
  prints 'ready <json>' once warmed up; then each input line 'step' runs one training step and
  prints 'step <seconds> <peak RSS MiB>'; 'quit' (or EOF) exits.

--device cuda runs on the GPU in strict fp32 (TF32 off, so it computes what the WebGPU trainer
computes) with cuDNN's autotuned convolutions; loss.item() waits for the step, as TF.js's read does.
"""
import argparse
import json
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, cin, cout, dropout):
        super().__init__()
        self.conv1 = nn.Conv3d(cin, cout, 3, padding=1)
        self.conv2 = nn.Conv3d(cout, cout, 3, padding=1)
        self.dropout = dropout

    def forward(self, x):
        h = F.relu(self.conv1(x))
        if self.dropout > 0:
            h = F.dropout(h, self.dropout, self.training)
        return F.relu(self.conv2(h))


class NearestUp(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class UNet3D(nn.Module):
    def __init__(self, in_channels, classes, base, depth, dropout, upsampling):
        super().__init__()
        filters = [base * 2**level for level in range(depth)]
        self.enc = nn.ModuleList(
            Block(in_channels if level == 0 else filters[level - 1], f, dropout[level]) for level, f in enumerate(filters)
        )
        up = (lambda cin, cout: nn.ConvTranspose3d(cin, cout, 2, stride=2)) if upsampling == "transpose" else NearestUp
        self.up = nn.ModuleList(up(filters[level + 1], filters[level]) for level in range(depth - 1))
        self.dec = nn.ModuleList(Block(2 * filters[level], filters[level], dropout[level]) for level in range(depth - 1))
        self.head = nn.Conv3d(filters[0], classes, 1)

    def forward(self, x):
        skips = []
        for level, block in enumerate(self.enc):
            x = block(x)
            if level < len(self.enc) - 1:
                skips.append(x)
                x = F.max_pool3d(x, 2)
        for level in reversed(range(len(self.dec))):
            x = self.dec[level](torch.cat([self.up[level](x), skips[level]], dim=1))
        return self.head(x)


def cross_entropy(logits, onehot):
    return -(onehot * torch.log(torch.softmax(logits, dim=1) + 1e-7)).sum(dim=1).mean()


def dice_focal(logits, onehot, smooth=1e-5, alpha=0.25, gamma=2.0):
    log_p = F.log_softmax(logits, dim=1)
    p = torch.softmax(logits, dim=1)
    axes = (0, 2, 3, 4)
    overlap = (onehot * p).sum(axes)
    predicted = p.sum(axes)
    truth = onehot.sum(axes)
    dice = (2 * overlap + smooth) / (2 * overlap + (truth - overlap) + (predicted - overlap) + smooth)
    focal = (onehot * (1 - torch.exp(log_p)) ** gamma * (log_p * -alpha)).mean()
    return (1 - dice.mean()) + focal


def peak_rss_mib():
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--in-channels", type=int, default=3)
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--base", type=int, default=16)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--dropout", default="", help="comma-separated rate per level (default none)")
    parser.add_argument("--upsampling", choices=["nearest", "transpose"], default="nearest")
    parser.add_argument("--loss", choices=["ce", "dice-focal"], default="ce")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--eps", type=float, default=1e-8)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    dropout = [float(r) for r in args.dropout.split(",")] if args.dropout else [0.0] * args.depth
    if len(dropout) != args.depth:
        parser.error(f"--dropout needs {args.depth} rates, got {len(dropout)}")
    model = UNet3D(args.in_channels, args.classes, args.base, args.depth, dropout, args.upsampling).to(device)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, eps=args.eps)
    loss_fn = dice_focal if args.loss == "dice-focal" else cross_entropy
    s = args.size
    x = torch.rand(1, args.in_channels, s, s, s, device=device)
    labels = torch.randint(0, args.classes, (1, s, s, s), device=device)
    onehot = F.one_hot(labels, args.classes).permute(0, 4, 1, 2, 3).float()

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), onehot)
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
        print(f"step {time.perf_counter() - started:.6f} {peak_rss_mib()}", flush=True)


if __name__ == "__main__":
    main()
