/**
 * FedSeg wire protocol, version 1.
 *
 * Control messages are JSON text frames, each validated by a zod schema on receipt. Model weights
 * travel only in binary frames: a fixed prelude, a small JSON header (validated too) that ties the
 * payload to a round and an architecture hash, then the model file bytes (core/weights encoding).
 * A site must send `hello` with its token and receive `welcome` before the server sends it anything
 * else; in particular no model byte is sent to an unauthenticated connection.
 */
import { z } from 'zod';
import { FedSegError } from '../errors.js';
import { ModelConfigSchema } from '../model/config.js';

export const PROTOCOL_VERSION = 1;
/** "FSGW" + version byte + 3 reserved bytes + u32 LE header length, then header JSON, then payload. */
const MAGIC = [0x46, 0x53, 0x47, 0x57];
const PRELUDE_BYTES = 12;
const MAX_HEADER_BYTES = 64 * 1024;

/** The most any peer accepts in one frame (1 GiB, about 268 M float32 parameters). */
export const MAX_FRAME_BYTES = 1024 * 1024 * 1024;
/** Beyond the float32 data a weight frame carries its prelude and header (<= 64 KiB) and the model file's header and trailer. */
const FRAME_MARGIN_BYTES = 1024 * 1024;

/**
 * The frame cap of a federation whose model has `parameters` float32 parameters: the weights plus a
 * margin, so a 32-filter U-Net (~90 MB) fits and nothing much larger is ever buffered.
 */
export function frameCapFor(parameters: number): number {
  return Math.min(MAX_FRAME_BYTES, 4 * parameters + FRAME_MARGIN_BYTES);
}

/** The smallest cap that can carry a model of `parameters` parameters at all (the floats and a full frame header). */
export function minimumFrameCapFor(parameters: number): number {
  return 4 * parameters + MAX_HEADER_BYTES;
}

/**
 * Sites upload their updates by HTTP PUT to this path on the server's origin (server/update-upload.ts),
 * presenting their WebSocket session's upload ticket as `Authorization: Bearer <ticket>`; the WebSocket
 * carries only control messages from the site, each at most SITE_MESSAGE_MAX_BYTES.
 */
export const UPLOAD_PATH = '/updates';
export const SITE_MESSAGE_MAX_BYTES = 1024 * 1024;

/** WebSocket close codes FedSeg uses (4000-4999 are application-defined). */
export const CLOSE = {
  authFailed: 4401,
  protocolError: 4400,
  tooLarge: 4413,
  replaced: 4409,
  heartbeatTimeout: 4408,
  serverShutdown: 4503,
} as const;

const round = z.number().int().nonnegative();
const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/);
const finite = z.number().finite();
/** Aggregate metrics a site may report: flat name -> number (e.g. dice_WT, loss). Never per-case data. */
export const MetricsSchema = z.record(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/), finite)
  .refine((m) => Object.keys(m).length <= 64, 'at most 64 metrics');
export type Metrics = z.infer<typeof MetricsSchema>;

/** What a site is told to do in a round; strategies fill it (FedProx sets mu). */
export const RoundInstructionsSchema = z.object({
  epochs: z.number().int().positive(),
  learningRate: z.number().positive().finite(),
  batchSize: z.number().int().positive(),
  /** FedProx proximal coefficient; 0 means plain local training. */
  mu: z.number().nonnegative().finite(),
  /** Seed for the site's local shuffling/patch sampling this round. */
  seed: z.number().int(),
});
export type RoundInstructions = z.infer<typeof RoundInstructionsSchema>;

// ---- secure aggregation (core/privacy; Bonawitz et al. 2017) ----
const siteName = z.string().min(1).max(200);
/** A raw 32-byte X25519 public key, base64. */
const publicKey = z.string().regex(/^[A-Za-z0-9+/]{43}=$/, 'a base64 X25519 public key');
/** A Shamir share: one element of GF(2^521 - 1), fixed-width hex. */
const shareHex = z.string().regex(/^[0-9a-f]{132}$/, 'a 132-digit hex Shamir share');
const sealed = z.string().max(4096).regex(/^[A-Za-z0-9+/]*={0,2}$/, 'base64');
const MAX_ROSTER = 1000;
/** Set in an announce when the round is aggregated securely: the server will only ever learn the sum. */
export const SecureRoundSchema = z.object({
  threshold: z.number().int().min(2),
  /** Each coordinate of an update is clamped to [-clipRange, clipRange] before encoding. */
  clipRange: z.number().positive().finite(),
});
export const FixedPointEncodingSchema = z.object({
  clipRange: z.number().positive().finite(), maxTotalCases: z.number().int().positive(), fractionBits: z.number().int().min(1).max(52),
  /** Distributed DP: each site weighs 1, clips its update to L2 norm `clip` and adds N(0, noiseStd^2) per coordinate. */
  dp: z.object({ clip: z.number().positive().finite(), noiseStd: z.number().nonnegative().finite() }).optional(),
});
const sealedShare = z.object({ to: siteName, ciphertext: sealed });
const relayedShare = z.object({ from: siteName, ciphertext: sealed });
const heldShare = z.object({ of: siteName, share: shareHex });
/** Round 0 (AdvertiseKeys): a key pair to seal shares with (c) and one to agree mask seeds with (s). */
export const SecAggKeysSchema = z.object({ type: z.literal('secagg-keys'), round, attempt: z.number().int().positive(), cPublic: publicKey, sPublic: publicKey });
/** Round 1 (ShareKeys): shares of the site's mask-key and self-mask seed, one envelope per other roster site. */
export const SecAggSharesSchema = z.object({ type: z.literal('secagg-shares'), round, attempt: z.number().int().positive(), shares: z.array(sealedShare).max(MAX_ROSTER) });
/** Round 3 (Unmasking): self-mask shares of the survivors and mask-key shares of the dropped, never both for one site. */
export const SecAggUnmaskSchema = z.object({
  type: z.literal('secagg-unmask'), round, attempt: z.number().int().positive(),
  selfMaskShares: z.array(heldShare).max(MAX_ROSTER), keyShares: z.array(heldShare).max(MAX_ROSTER),
});
/** The sites that advertised keys (U1), sorted by name: a site's share index is its position + 1. */
export const SecAggRosterSchema = z.object({
  type: z.literal('secagg-roster'), round, attempt: z.number().int().positive(), threshold: z.number().int().min(2),
  sites: z.array(z.object({ site: siteName, cPublic: publicKey, sPublic: publicKey })).max(MAX_ROSTER),
  encoding: FixedPointEncodingSchema,
});
/** The envelopes addressed to this site from every site that shared its keys (U2, with this site). */
export const SecAggRelaySchema = z.object({ type: z.literal('secagg-relay'), round, attempt: z.number().int().positive(), shares: z.array(relayedShare).max(MAX_ROSTER) });
/** Which sites' masked inputs arrived (survivors, U3) and which did not (dropped, U2 minus U3). */
export const SecAggUnmaskRequestSchema = z.object({
  type: z.literal('secagg-unmask-request'), round, attempt: z.number().int().positive(),
  survivors: z.array(siteName).max(MAX_ROSTER), dropped: z.array(siteName).max(MAX_ROSTER),
});
export type SecureRound = z.infer<typeof SecureRoundSchema>;
export type SecAggRoster = z.infer<typeof SecAggRosterSchema>;
export type SecAggUnmask = z.infer<typeof SecAggUnmaskSchema>;
export type SecAggUnmaskRequest = z.infer<typeof SecAggUnmaskRequestSchema>;

// ---- site -> server ----
export const HelloSchema = z.object({
  type: z.literal('hello'),
  protocol: z.number().int(),
  token: z.string().min(1).max(256),
  /** Cases the site can train on and validate on; an update may not claim more training cases. */
  cases: z.object({ train: z.number().int().nonnegative(), validation: z.number().int().nonnegative() }),
  software: z.string().max(100).optional(),
});
export const ApproveSchema = z.object({ type: z.literal('approve'), round, attempt: z.number().int().positive() });
export const DeclineSchema = z.object({
  type: z.literal('decline'), round, attempt: z.number().int().positive(), reason: z.string().max(500).optional(),
});
/** After approving: the site cannot deliver this round's update (its training failed); the round goes on without it. */
export const WithdrawSchema = z.object({
  type: z.literal('withdraw'), round, attempt: z.number().int().positive(), reason: z.string().max(500),
});
export const TrainingProgressSchema = z.object({
  type: z.literal('progress'), round, epoch: z.number().int().nonnegative(), epochs: z.number().int().positive(),
  loss: finite.optional(),
});
/** A site's evaluation of the global model of `round` on its local validation cases. */
export const EvaluationSchema = z.object({
  type: z.literal('evaluation'), round, numCases: z.number().int().nonnegative(), metrics: MetricsSchema,
});
/** Asks the server for the round's weights in full (after a train-cached naming a model the site no longer holds). */
export const ResendWeightsSchema = z.object({ type: z.literal('resend-weights'), round });
export const PingSchema = z.object({ type: z.literal('ping'), t: z.number() });
export const PongSchema = z.object({ type: z.literal('pong'), t: z.number() });

export const SiteMessageSchema = z.discriminatedUnion('type', [
  HelloSchema, ApproveSchema, DeclineSchema, WithdrawSchema, TrainingProgressSchema, EvaluationSchema, ResendWeightsSchema, PingSchema, PongSchema,
  SecAggKeysSchema, SecAggSharesSchema, SecAggUnmaskSchema,
]);
export type SiteMessage = z.infer<typeof SiteMessageSchema>;

// ---- server -> site ----
export const WelcomeSchema = z.object({
  type: z.literal('welcome'), protocol: z.number().int(), site: z.string(), heartbeatMs: z.number().int().positive(),
  maxMessageBytes: z.number().int().positive(), architectureHash: z.string(),
  /** Authorises this connection's update uploads (UPLOAD_PATH) while it stays open; never logged. */
  uploadTicket: z.string().min(32).max(256),
});
/**
 * Why the server refused a connection, for software to act on (the words beside it are for people):
 * unknown-token: no registered site has this token (mistyped, or the site was removed);
 * site-removed: the operator removed this site while it was connected;
 * protocol-version: the site speaks another protocol version;
 * bad-hello: the first message was not a valid hello; hello-timeout: no hello in time;
 * frame-before-hello: a binary frame came before authentication.
 * The auth-failed close frame carries the code as its reason too.
 */
export const RefusalCodeSchema = z.enum(['unknown-token', 'site-removed', 'protocol-version', 'bad-hello', 'hello-timeout', 'frame-before-hello']);
export type RefusalCode = z.infer<typeof RefusalCodeSchema>;
export const AuthFailedSchema = z.object({ type: z.literal('auth-failed'), code: RefusalCodeSchema, reason: z.string() });
export type AuthFailed = z.infer<typeof AuthFailedSchema>;
/**
 * Differential privacy of a round (docs/PRIVACY.md), announced so the site clips its update before it
 * leaves and its admin sees the privacy spent: epsilon (at `delta`) over the rounds completed so far,
 * and after this round if it completes.
 */
export const RoundPrivacySchema = z.object({
  mode: z.enum(['central', 'distributed']),
  clip: z.number().positive().finite(),
  noiseMultiplier: z.number().positive().finite(),
  delta: z.number().gt(0).lt(1),
  epsilonSoFar: z.number().nonnegative().finite(),
  epsilonAfterRound: z.number().nonnegative().finite(),
  budget: z.object({ epsilon: z.number().positive().finite(), delta: z.number().gt(0).lt(1) }),
});
export type RoundPrivacy = z.infer<typeof RoundPrivacySchema>;
export const AnnounceSchema = z.object({
  type: z.literal('announce'), round, attempt: z.number().int().positive(), totalRounds: z.number().int().positive(),
  /** Epoch milliseconds by which approve/decline must arrive. */
  approvalDeadline: z.number(),
  trainingDeadlineS: z.number().positive(),
  strategy: z.string(),
  architectureHash: z.string(),
  /** Model architecture config, shown to the site admin and used to build the local model. */
  model: ModelConfigSchema,
  instructions: RoundInstructionsSchema,
  /** What the site would send if it approves; shown verbatim to the admin. */
  leavesSite: z.array(z.string()),
  sitesRegistered: z.number().int().nonnegative(),
  /** Present when the server learns only the sum of the updates (core/privacy). */
  secureAggregation: SecureRoundSchema.optional(),
  /** Present when the federation runs DP-FedAvg: the site must clip its update to `privacy.clip`. */
  privacy: RoundPrivacySchema.optional(),
});
export type Announce = z.infer<typeof AnnounceSchema>;
/**
 * Train on the global model the site already received (as the evaluation copy of the previous
 * round), identified by its SHA-256: saves sending the same weights twice.
 */
export const TrainCachedSchema = z.object({ type: z.literal('train-cached'), round, sha256: sha256Hex });
/** `norm` is the server's computation of ||w_local - w_global||; absent for a masked input, whose norm the server cannot see. */
export const UpdateAcceptedSchema = z.object({ type: z.literal('update-accepted'), round, norm: finite.optional() });
export const UpdateRejectedSchema = z.object({ type: z.literal('update-rejected'), round, reason: z.string() });
export const LeftOutSchema = z.object({ type: z.literal('left-out'), round, reason: z.string() });
export const RoundResultSchema = z.object({
  type: z.literal('round-result'), round, attempt: z.number().int().positive(),
  status: z.enum(['completed', 'abandoned']),
  sites: z.array(z.string()), numCases: z.number().int().nonnegative(),
  /** Registered sites, so a site can show "k of N sites returned". */
  sitesRegistered: z.number().int().nonnegative(),
  modelHash: sha256Hex.optional(), reason: z.string().optional(),
});
export type RoundResult = z.infer<typeof RoundResultSchema>;
/** The most site names a `waiting` message lists. */
export const WAITING_SITES_MAX = 1000;
/**
 * What the server is waiting for, sent whenever it changes and on connect: more sites, approvals,
 * updates, final evaluations or a retry. `message` is null once nothing is awaited.
 */
export const WaitingSchema = z.object({
  type: z.literal('waiting'),
  /** key-shares and unmasking-shares: the steps of a securely aggregated round (core/privacy). */
  for: z.enum(['sites', 'approvals', 'key-shares', 'updates', 'unmasking-shares', 'evaluations', 'retry']).nullable(),
  message: z.string().max(2000).nullable(),
  sites: z.array(z.string()).max(WAITING_SITES_MAX),
  /** Epoch milliseconds when the wait ends at the latest. */
  deadline: z.number().nullable(),
});
export type WaitingMessage = z.infer<typeof WaitingSchema>;
export const FederationDoneSchema = z.object({ type: z.literal('done'), rounds: z.number().int().nonnegative() });
export const ErrorMessageSchema = z.object({ type: z.literal('error'), code: z.string(), message: z.string() });

export const ServerMessageSchema = z.discriminatedUnion('type', [
  WelcomeSchema, AuthFailedSchema, AnnounceSchema, TrainCachedSchema, UpdateAcceptedSchema, UpdateRejectedSchema, LeftOutSchema,
  RoundResultSchema, WaitingSchema, FederationDoneSchema, ErrorMessageSchema, PingSchema, PongSchema,
  SecAggRosterSchema, SecAggRelaySchema, SecAggUnmaskRequestSchema,
]);
export type ServerMessage = z.infer<typeof ServerMessageSchema>;

// ---- binary frames ----
/** Global weights sent to a site: to train on (`train`) or to evaluate (`evaluate`). */
export const GlobalFrameHeaderSchema = z.object({
  kind: z.literal('global'), purpose: z.enum(['train', 'evaluate']), round, architectureHash: z.string(),
  sha256: sha256Hex,
});
/** A site's locally trained weights for `round`, with the case count they were trained on. */
export const UpdateFrameHeaderSchema = z.object({
  kind: z.literal('update'), round, attempt: z.number().int().positive(), architectureHash: z.string(),
  numCases: z.number(), // validated against the site's declaration by the server, so any number parses here
  metrics: MetricsSchema, trainingSeconds: finite.nonnegative(),
  /** The site's own computation of ||w_local - w_global||; the server recomputes it. */
  norm: finite.nonnegative().optional(),
});
/**
 * A site's masked input in a secure round: `elements` little-endian uint32 ring elements (the
 * encoded update and case count plus masks, core/privacy/fixed-point.ts). Carries no metrics.
 */
export const MaskedUpdateFrameHeaderSchema = z.object({
  kind: z.literal('masked-update'), round, attempt: z.number().int().positive(), architectureHash: z.string(), elements: z.number().int().positive(),
});
export const FrameHeaderSchema = z.discriminatedUnion('kind', [GlobalFrameHeaderSchema, UpdateFrameHeaderSchema, MaskedUpdateFrameHeaderSchema]);
export type GlobalFrameHeader = z.infer<typeof GlobalFrameHeaderSchema>;
export type UpdateFrameHeader = z.infer<typeof UpdateFrameHeaderSchema>;
export type MaskedUpdateFrameHeader = z.infer<typeof MaskedUpdateFrameHeaderSchema>;
export type FrameHeader = z.infer<typeof FrameHeaderSchema>;


/**
 * The header JSON is padded with spaces to a multiple of 8 bytes, so the payload (a model file,
 * whose tensor data is 8-aligned within it) lands 8-aligned in the frame and the receiver can read
 * the floats in place instead of copying them. JSON allows trailing whitespace, so older readers
 * parse padded headers unchanged.
 */
export function encodeFrame(header: FrameHeader, payload: Uint8Array): Buffer {
  const json = JSON.stringify(FrameHeaderSchema.parse(header));
  const jsonBytes = Buffer.byteLength(json);
  const headerBytes = Buffer.from(json.padEnd(json.length + ((8 - ((PRELUDE_BYTES + jsonBytes) % 8)) % 8)), 'utf8');
  const prelude = Buffer.alloc(PRELUDE_BYTES);
  prelude.set(MAGIC, 0);
  prelude[4] = PROTOCOL_VERSION;
  prelude.writeUInt32LE(headerBytes.length, 8);
  return Buffer.concat([prelude, headerBytes, payload]);
}

export interface DecodedFrame {
  header: FrameHeader;
  payload: Uint8Array;
}

/** Parses a binary frame; throws FedSegError naming what is wrong. */
export function decodeFrame(frame: Uint8Array, maxBytes = MAX_FRAME_BYTES): DecodedFrame {
  if (frame.byteLength > maxBytes) throw new FedSegError(`binary frame of ${frame.byteLength} bytes exceeds the ${maxBytes}-byte limit`, { field: 'frame' });
  if (frame.byteLength < PRELUDE_BYTES || MAGIC.some((b, i) => frame[i] !== b)) {
    throw new FedSegError('binary frame does not start with the FedSeg prelude', { field: 'frame' });
  }
  if (frame[4] !== PROTOCOL_VERSION) throw new FedSegError(`binary frame has protocol version ${frame[4]}, expected ${PROTOCOL_VERSION}`, { field: 'frame.version' });
  const payloadOffset = framePayloadOffset(frame);
  if (payloadOffset === null || payloadOffset > frame.byteLength) {
    throw new FedSegError(`binary frame header length ${headerLengthOf(frame)} is out of range`, { field: 'frame.header' });
  }
  const headerText = Buffer.from(frame.buffer, frame.byteOffset + PRELUDE_BYTES, payloadOffset - PRELUDE_BYTES).toString('utf8');
  const header = parseJsonText(FrameHeaderSchema, headerText, { what: 'binary frame header', failsSchema: 'is invalid', field: 'frame.header' });
  return { header, payload: frame.subarray(payloadOffset) };
}

function headerLengthOf(prelude: Uint8Array): number {
  return new DataView(prelude.buffer, prelude.byteOffset, PRELUDE_BYTES).getUint32(8, true);
}

/**
 * Where a frame's payload starts, read from its first PRELUDE_BYTES (so a receiver can hash the
 * payload as it streams in); null when those bytes are too few or announce an oversized header.
 */
function framePayloadOffset(prelude: Uint8Array): number | null {
  if (prelude.byteLength < PRELUDE_BYTES) return null;
  const headerLength = headerLengthOf(prelude);
  return headerLength > MAX_HEADER_BYTES ? null : PRELUDE_BYTES + headerLength;
}

/** Parses a JSON text frame with `schema`; throws FedSegError saying whether it was not JSON or failed the schema. */
export function decodeJson<T>(schema: z.ZodType<T>, text: string, maxBytes = MAX_FRAME_BYTES): T {
  if (Buffer.byteLength(text, 'utf8') > maxBytes) throw new FedSegError(`message exceeds the ${maxBytes}-byte limit`, { field: 'message' });
  return parseJsonText(schema, text, { what: 'message', failsSchema: 'fails the protocol schema', field: 'message' });
}

/** JSON.parse then `schema`; the error says `<what> is not JSON` or `<what> <failsSchema>: <issues>`. */
function parseJsonText<T>(schema: z.ZodType<T>, text: string, errors: { what: string; failsSchema: string; field: string }): T {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new FedSegError(`${errors.what} is not JSON`, { field: errors.field });
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new FedSegError(`${errors.what} ${errors.failsSchema}: ${formatIssues(parsed.error)}`, { field: errors.field });
  return parsed.data;
}

export function formatIssues(error: z.ZodError): string {
  return error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
}
