/**
 * Content-Security-Policy of the app, used by the Vite build (meta tag), Electron (response headers) and the
 * dev bridge (response headers) so all three enforce the same policy. Niivue needs WebGL2 (no CSP keyword),
 * data: images for its font atlas and blob: for textures; nothing loads from the network, nothing is eval'd.
 */
const DIRECTIVES = [
  "default-src 'none'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self' data:",
  "connect-src 'self' data: blob:",
  "worker-src 'self' blob:",
  "base-uri 'none'",
  "form-action 'none'",
  "object-src 'none'",
];
/** For the <meta> tag, where browsers ignore frame-ancestors. */
export const CONTENT_SECURITY_POLICY_META = DIRECTIVES.join('; ');
/** For response headers: also forbids embedding the app in a frame. */
export const CONTENT_SECURITY_POLICY = [...DIRECTIVES, "frame-ancestors 'none'"].join('; ');
