/** Child-process entry for native-conv.test.ts: checks the addon under whatever FEDSEG_NATIVE_ISA /
 * FEDSEG_THREADS this process was started with and prints one JSON line of results. */
import { loadNativeConvEngine, nativeEngineStatus } from '../../core/tf/native-engine.js';
import { checkCase, convCases, useCpuReference } from './conv-reference.js';

await useCpuReference();
const engine = loadNativeConvEngine();
if (!engine) throw new Error(nativeEngineStatus());
const results = convCases(Number(process.env.CASES ?? 20), Number(process.env.SEED ?? 7)).map((c) => checkCase(engine, c));
console.log(JSON.stringify({ engine: engine.name, results }));
