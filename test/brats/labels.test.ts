import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCsv } from '../../core/brats/csv.js';
import { classToLabel, inRegion, isBratsLabel, labelToClass, parseSurvivalDays, REGIONS } from '../../core/brats/index.js';

test('label 4 <-> class 3 and the evaluation regions', () => {
  assert.deepEqual([0, 1, 2, 4].map(labelToClass), [0, 1, 2, 3]);
  assert.deepEqual([0, 1, 2, 3].map(classToLabel), [0, 1, 2, 4]);
  assert.throws(() => labelToClass(3), /3 is not a BraTS label/);
  assert.throws(() => classToLabel(4), /4 is not a class/);
  assert.deepEqual(REGIONS, { ET: [4], TC: [1, 4], WT: [1, 2, 4] });
  assert.equal(inRegion('TC', 4), true);
  assert.equal(inRegion('ET', 1), false);
  assert.deepEqual([0, 1, 2, 3, 4, 5, 0.5].map(isBratsLabel), [true, true, true, false, true, false, false]);
});

test('survival days: numbers, ALIVE strings, unknowns, garbage', () => {
  assert.deepEqual(parseSurvivalDays('475'), { days: 475, alive: false });
  assert.deepEqual(parseSurvivalDays('ALIVE (361 days later)'), { days: 361, alive: true });
  assert.deepEqual(parseSurvivalDays('alive'), { days: null, alive: true });
  assert.deepEqual(parseSurvivalDays(''), { days: null, alive: null });
  assert.deepEqual(parseSurvivalDays('NA'), { days: null, alive: null });
  assert.equal(parseSurvivalDays('about a year'), 'invalid');
});

test('CSV parser: quotes, doubled quotes, CRLF, BOM, blank lines', () => {
  assert.deepEqual(parseCsv('\ufeffa,b\r\n"x, y","say ""hi"""\n\n1,\n'), [['a', 'b'], ['x, y', 'say "hi"'], ['1', '']]);
});
