import assert from 'node:assert/strict';
import { isAbsolute } from 'node:path';
import { test } from 'node:test';
import { FedSegError } from '../../core/errors.js';
import { parseDemoOptions } from '../../demo/options.js';

test('demo defaults: five sites, four rounds, U-Net, the crop seen at 4 mm, ./demo-output', () => {
  const o = parseDemoOptions({});
  assert.equal(o.sites, 5);
  assert.equal(o.rounds, 4);
  assert.equal(o.model, 'unet');
  assert.equal(o.downsample, 4);
  assert.equal(o.out, './demo-output');
  assert.ok(isAbsolute(o.outDir));
  assert.equal(parseDemoOptions({ model: 'attention-unet' }).model, 'attention-unet');
});

test('bad demo options are FedSegErrors naming the flag', () => {
  const fails = (raw: Record<string, unknown>, pattern: RegExp) =>
    assert.throws(() => parseDemoOptions(raw), (e: unknown) => e instanceof FedSegError && pattern.test(e.message));
  fails({ sites: 0 }, /field sites: --sites: /);
  fails({ casesPerSite: 1 }, /field cases: --cases: /);
  fails({ localEpochs: 0 }, /field local-epochs: --local-epochs: /);
  fails({ model: 'resnet' }, /field model: --model: /);
  fails({ casesPerSite: 3, heldOut: 3 }, /field held-out: --held-out must be fewer than --cases \(3\), got "3"/);
  fails({ downsample: 3 }, /field downsample: --downsample must divide the 128\^3 crop, got "3"/);
  fails({ downsample: 16, depth: 5 }, /field downsample: --downsample 16 leaves a 8\^3 window, not divisible by 2\^\(depth-1\) = 16/);
  fails({ learningRate: Number.NaN }, /field lr: --lr: /);
  fails({ dpEpsilon: 0 }, /field dp-epsilon: --dp-epsilon: /);
  fails({ dpEpsilon: 8, dpClip: -1 }, /field dp-clip: --dp-clip: /);
});
