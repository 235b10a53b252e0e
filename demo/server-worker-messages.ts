/** IPC messages from demo/server-worker.ts to the demo, validated on arrival. */
import { z } from 'zod';

export const ServerWorkerMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('listening'), wsUrl: z.string(), httpUrl: z.string() }),
  z.object({ type: z.literal('round-started'), round: z.int(), attempt: z.int() }),
  z.object({ type: z.literal('round-completed'), round: z.int(), sites: z.array(z.string()) }),
  z.object({ type: z.literal('round-abandoned'), round: z.int(), attempt: z.int(), reason: z.string() }),
  z.object({ type: z.literal('update-rejected'), round: z.int(), site: z.string(), reason: z.string() }),
  z.object({ type: z.literal('evaluation'), round: z.int(), site: z.string(), metrics: z.record(z.string(), z.number()) }),
  z.object({ type: z.literal('done'), state: z.string(), finalModelFile: z.string().nullable() }),
]);
export type ServerWorkerMessage = z.infer<typeof ServerWorkerMessageSchema>;
