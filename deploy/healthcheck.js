#!/usr/bin/env node
// Container health check (the Dockerfile's HEALTHCHECK): GET /healthz from the server on this machine.
// $FEDSEG_HEALTH_URL overrides the address (default: the image's CMD, TLS on port 8443). The certificate
// is not checked: it carries the server's public DNS name, not 127.0.0.1, and nothing secret is sent.
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';

const url = new URL(process.env.FEDSEG_HEALTH_URL ?? 'https://127.0.0.1:8443/healthz');
const get = url.protocol === 'https:' ? httpsGet : httpGet;
const request = get(url, { rejectUnauthorized: false, timeout: 4000 }, (res) => {
  res.resume();
  if (res.statusCode !== 200) console.error(`health check: ${url.href} answered ${res.statusCode}`);
  process.exit(res.statusCode === 200 ? 0 : 1);
});
request.on('timeout', () => request.destroy(new Error('no answer within 4 s')));
request.on('error', (err) => {
  console.error(`health check: ${url.href} failed: ${err.message}`);
  process.exit(1);
});
