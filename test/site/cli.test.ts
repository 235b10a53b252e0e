import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

function site(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, ['bin/fedseg.js', 'site', ...args], { encoding: 'utf8', env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
}

test('fedseg site names what is missing or wrong before connecting anywhere', () => {
  const cases: [string[], RegExp][] = [
    [['--token', 't', '--data', 'd', '--auto-approve'], /--server URL is required/],
    [['--server', 'http://x', '--token', 't', '--data', 'd', '--auto-approve'], /ws:\/\/ or wss:\/\/ URL/],
    [['--server', 'ws://127.0.0.1:1/ws', '--data', 'd', '--auto-approve'], /--token-file FILE, --token T or \$FEDSEG_SITE_TOKEN is required/],
    [['--server', 'ws://127.0.0.1:1/ws', '--token-file', '/no/such/token', '--data', 'd', '--auto-approve'], /\/no\/such\/token: field token-file: cannot read the token file \(ENOENT\)/],
    [['--server', 'ws://127.0.0.1:1/ws', '--token', 't', '--token-file', 'f', '--data', 'd', '--auto-approve'], /give --token or --token-file, not both/],
    [['--server', 'ws://127.0.0.1:1/ws', '--token', 't', '--data', 'd'], /approvals need a terminal; use --auto-approve/],
    [['--server', 'ws://127.0.0.1:1/ws', '--token', 't', '--data', '/no/such/folder', '--auto-approve', '--json'], /no\/such\/folder/],
  ];
  for (const [args, message] of cases) {
    const out = site(args, { FEDSEG_SITE_TOKEN: '' });
    assert.equal(out.status, 1, `${args.join(' ')}: ${out.stderr}`);
    assert.match(out.stderr, message);
  }
});
