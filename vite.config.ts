/**
 * Renderer build: React + Niivue into renderer/dist with relative asset paths (served from app://fedseg in
 * Electron and from the dev bridge's HTTP server). The CSP meta tag comes from renderer/csp.ts, the same
 * policy Electron and the bridge send as a response header.
 */
import react from '@vitejs/plugin-react';
import { defineConfig, type Plugin } from 'vite';
import { CONTENT_SECURITY_POLICY_META } from './renderer/csp.js';

function cspMetaTag(): Plugin {
  return {
    name: 'fedseg-csp',
    transformIndexHtml: () => [{ tag: 'meta', attrs: { 'http-equiv': 'Content-Security-Policy', content: CONTENT_SECURITY_POLICY_META }, injectTo: 'head-prepend' }],
  };
}

export default defineConfig({
  root: 'renderer',
  base: './',
  plugins: [react(), cspMetaTag()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    chunkSizeWarningLimit: 4096,
    // Module preload polyfill injects an inline script, which the CSP forbids.
    modulePreload: { polyfill: false },
  },
});
