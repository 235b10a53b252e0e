/**
 * The IPC allow-list without any dependency, so the sandboxed preload and the browser shim stay tiny; the
 * request schemas for exactly these channels live in api.ts (checked there at compile time).
 */
export const CHANNELS = [
  'getState', 'setAdminPassphrase', 'unlockAdmin', 'lockAdmin', 'connect', 'disconnect', 'decideRound', 'chooseFolder',
  'importFolder', 'listCases', 'readVolume', 'predict', 'saveFinalMask', 'chooseFinalMask', 'setSliceMark', 'getReview',
] as const;
export type Channel = (typeof CHANNELS)[number];

export const IPC_PREFIX = 'fedseg:';
export const EVENT_CHANNEL = 'fedseg:event';
