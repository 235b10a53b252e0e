import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  classesToNiftiOrder, classIndex, createCaseTensor, niftiIndex, niftiOrderToClasses, niftiOrderToTensor,
  tensorIndex, tensorToNiftiOrder,
} from '../../core/preprocess/layout.js';

test('CaseTensor is row-major [i][j][k][c] (channel fastest, i slowest)', () => {
  const shape = [2, 3, 4, 3] as const;
  assert.equal(tensorIndex(shape, 0, 0, 0, 1), 1);
  assert.equal(tensorIndex(shape, 0, 0, 1, 0), 3);
  assert.equal(tensorIndex(shape, 0, 1, 0, 0), 12);
  assert.equal(tensorIndex(shape, 1, 0, 0, 0), 36);
  assert.equal(classIndex([2, 3, 4], 1, 2, 3), 23);
  assert.equal(niftiIndex([2, 3, 4], 1, 2, 3), 1 + 2 * (2 + 3 * 3));
});

test('tensor <-> 4D NIfTI order puts every (i, j, k, c) where the other layout expects it', () => {
  const dims = [3, 4, 5, 2] as const;
  const tensor = createCaseTensor([...dims]);
  for (let i = 0; i < 3; i++) for (let j = 0; j < 4; j++) for (let k = 0; k < 5; k++) for (let c = 0; c < 2; c++) {
    tensor.data[tensorIndex(dims, i, j, k, c)] = 1000 * c + 100 * k + 10 * j + i;
  }
  const nifti = tensorToNiftiOrder(tensor);
  for (let i = 0; i < 3; i++) for (let j = 0; j < 4; j++) for (let k = 0; k < 5; k++) for (let c = 0; c < 2; c++) {
    assert.equal(nifti[i + 3 * (j + 4 * (k + 5 * c))], 1000 * c + 100 * k + 10 * j + i);
  }
  assert.deepEqual(niftiOrderToTensor(nifti, dims), tensor);
});

test('class volume <-> 3D NIfTI order round trip', () => {
  const data = Uint8Array.from({ length: 2 * 3 * 4 }, (_, n) => n);
  const classes = niftiOrderToClasses(data, [2, 3, 4]);
  assert.equal(classes.data[classIndex(classes.shape, 1, 2, 3)], data[niftiIndex([2, 3, 4], 1, 2, 3)]);
  assert.deepEqual(classesToNiftiOrder(classes), data);
});
