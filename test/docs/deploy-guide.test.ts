/**
 * docs/DEPLOY.md is executable: this test extracts its fenced blocks and runs them as written for a
 * coordinator and two hospitals on loopback with TLS, each role in its own home folder (with `~/fedseg`
 * linking to this checkout), and fails if any command fails or prints something other than what the
 * guide's `expect` blocks say.
 *
 * Block markers (the words after the fence's language):
 *   sh check role=R                 run with bash -eu in R's home; must exit 0
 *   sh check=background:NAME role=R start and leave running (under a pseudo-terminal, like a person's shell)
 *   sh nocheck=REASON               not run; the reasons are listed below, so a new unchecked block fails here
 *   text expect=NAME|previous       lines the process prints, in order; "…" matches anything; a line
 *                                   ending in "[y/N] y" is a prompt the test answers with "y"
 *   json check=config               a federation config that must validate
 * role=hospital blocks run once per hospital, with "hospital-1" replaced by its name. The only other
 * substitutions: the server name (fedseg.example.org, 0.0.0.0) becomes localhost and port 8443 a free port.
 * Between registering the sites and deleting the coordinator's copies of the tokens, the test plays the
 * part the guide leaves to people: it copies each token file and ca.pem into that hospital's ~/Downloads.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseFederationConfig } from '../../server/config.js';
import { freePort } from '../server/helpers.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const GUIDE = join(REPO, 'docs/DEPLOY.md');
const HOSPITALS = ['hospital-1', 'hospital-2'];
/** Blocks the test does not run, and why; anything else unmarked fails the test. */
const NOT_RUN: Record<string, string> = {
  'installs-packages': 'npm ci would reinstall the node_modules this test runs from',
  'needs-root': 'creates system users, files under /etc and services; the test runs unprivileged (test/deploy checks the unit)',
  'needs-docker': 'needs a Docker daemon (test/deploy runs the image\'s command without one)',
  'needs-public-dns': 'a public CA must reach the server under its public DNS name',
  'needs-running-server': 'addresses the production server by its real name',
};
const WAIT_MS = 240_000;

interface Block {
  lang: string;
  attrs: Record<string, string>;
  body: string;
  line: number;
}

function parseBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S+)(.*)$/.exec(lines[i]);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i]);
    assert.ok(i < lines.length, `DEPLOY.md line ${start + 1}: the fenced block is never closed`);
    const attrs = Object.fromEntries(open[2].trim().split(/\s+/).filter(Boolean).map((w) => {
      const eq = w.indexOf('=');
      return eq < 0 ? [w, ''] : [w.slice(0, eq), w.slice(eq + 1)];
    }));
    blocks.push({ lang: open[1], attrs, body: body.join('\n'), line: start + 1 });
  }
  return blocks;
}

/** A transcript line as a regex: literal text, "…" for anything. */
function linePattern(line: string): RegExp {
  return new RegExp(line.trim().split('…').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*'));
}

class Transcript {
  output = '';
  exited: number | null = null;
  private waiters: (() => void)[] = [];

  constructor(readonly name: string, readonly child: ChildProcess) {
    const add = (chunk: Buffer) => {
      this.output += chunk.toString('utf8').replace(/\r/g, '');
      this.poke();
    };
    child.stdout?.on('data', add);
    child.stderr?.on('data', add);
    child.on('exit', (code) => {
      this.exited = code ?? 1;
      this.poke();
    });
  }

  /** Exit code, or null if still running after `ms`. */
  async waitExit(ms: number): Promise<number | null> {
    const deadline = Date.now() + ms;
    while (this.exited === null && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 500);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.exited;
  }

  private poke(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Matches `lines` in order, answering prompts; resolves when all are seen, rejects on timeout or exit. */
  async expect(lines: string[], what: string): Promise<void> {
    let from = 0;
    const deadline = Date.now() + WAIT_MS;
    for (const raw of lines) {
      const prompt = /^(.*\[y\/N\]) (y|n)$/.exec(raw.trim());
      const pattern = linePattern(prompt ? prompt[1] : raw);
      for (;;) {
        const m = pattern.exec(this.output.slice(from));
        if (m) {
          from += m.index + m[0].length;
          if (prompt) this.child.stdin?.write(`${prompt[2]}\n`);
          break;
        }
        if (this.exited !== null) assert.fail(`${what}: "${raw}" never printed; ${this.name} exited with ${this.exited}. Output:\n${this.output}`);
        if (Date.now() > deadline) assert.fail(`${what}: "${raw}" not printed within ${WAIT_MS / 1000} s. Output of ${this.name}:\n${this.output}`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 1000);
          this.waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    }
  }
}


const tmp = mkdtempSync(join(tmpdir(), 'fedseg-deploy-'));
const background: Transcript[] = [];
after(() => {
  for (const t of background) {
    if (t.exited === null && t.child.pid) {
      try {
        process.kill(-t.child.pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
  }
  rmSync(tmp, { recursive: true, force: true });
});

test('DEPLOY.md marks every shell block as run by this test or says why not, and its configs validate', () => {
  const blocks = parseBlocks(readFileSync(GUIDE, 'utf8'));
  const shell = blocks.filter((b) => b.lang === 'sh');
  assert.ok(shell.filter((b) => 'check' in b.attrs).length >= 10, 'the guide has its steps as checked blocks');
  for (const b of shell) {
    const reason = b.attrs.nocheck;
    if (reason !== undefined) assert.ok(reason in NOT_RUN, `DEPLOY.md line ${b.line}: nocheck=${reason} is not one of the reasons this test knows`);
    else {
      assert.ok('check' in b.attrs, `DEPLOY.md line ${b.line}: a sh block must be marked check or nocheck=REASON`);
      assert.ok(b.attrs.role === 'coordinator' || b.attrs.role === 'hospital', `DEPLOY.md line ${b.line}: role=coordinator or role=hospital`);
    }
    assert.ok(!/(^|\s)fedseg\s/m.test(b.body.replace(/npx fedseg/g, '')), `DEPLOY.md line ${b.line}: call the command as \`npx fedseg\``);
  }
  const configs = blocks.filter((b) => b.lang === 'json' && b.attrs.check === 'config');
  assert.equal(configs.length, 1);
  for (const b of configs) parseFederationConfig(JSON.parse(b.body), `DEPLOY.md line ${b.line}`);
});

test('DEPLOY.md, run as written: a coordinator and two hospitals over TLS reach an approved, completed round', { timeout: 2 * WAIT_MS }, async (t) => {
  for (const tool of ['openssl', 'curl', 'script']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return t.skip(`${tool} is not installed`);
  }
  const port = await freePort();
  const blocks = parseBlocks(readFileSync(GUIDE, 'utf8'));
  const homes: Record<string, string> = {};
  for (const role of ['coordinator', ...HOSPITALS]) {
    homes[role] = join(tmp, role);
    mkdirSync(join(homes[role], 'Downloads'), { recursive: true });
    symlinkSync(REPO, join(homes[role], 'fedseg'));
  }
  const substitute = (text: string, hospital?: string) => {
    let out = text.replaceAll('fedseg.example.org', 'localhost').replaceAll('0.0.0.0', 'localhost').replaceAll('8443', String(port));
    if (hospital) out = out.replaceAll('hospital-1', hospital);
    return out;
  };
  const env = (home: string) => ({ ...process.env, HOME: home, npm_config_update_notifier: 'false', FEDSEG_SITE_TOKEN: '', FEDSEG_ADMIN_TOKEN: '' });
  const running = new Map<string, Transcript>();
  const pending: Promise<void>[] = [];
  const lastBackground = Math.max(...blocks.map((b, i) => (b.attrs.check?.startsWith('background:') ? i : -1)));
  let previous: { name: string; output: string } | null = null;
  let handedOver = false;

  const handOver = () => {
    const coordinator = join(homes.coordinator, 'fedseg-coordinator');
    if (handedOver || !HOSPITALS.every((h) => existsSync(join(coordinator, `${h}.token`)))) return;
    for (const h of HOSPITALS) {
      copyFileSync(join(coordinator, `${h}.token`), join(homes[h], 'Downloads', `${h}.token`));
      copyFileSync(join(coordinator, 'tls/ca.pem'), join(homes[h], 'Downloads/ca.pem'));
    }
    handedOver = true;
  };

  for (const [index, block] of blocks.entries()) {
    const check = block.attrs.check;
    if (block.lang === 'text' && block.attrs.expect !== undefined) {
      const name = block.attrs.expect;
      if (name === 'previous') {
        assert.ok(previous, `DEPLOY.md line ${block.line}: expect=previous needs a command before it`);
        const out: string = previous.output;
        let from = 0;
        for (const line of block.body.split('\n').filter((l) => l.trim())) {
          const m = linePattern(substitute(line)).exec(out.slice(from));
          assert.ok(m, `DEPLOY.md line ${block.line}: "${line}" not in the output of ${previous.name}:\n${out}`);
          from += m.index + m[0].length;
        }
        continue;
      }
      const targets = [...running.entries()].filter(([key]) => key === name || key.startsWith(`${name}@`));
      assert.ok(targets.length > 0, `DEPLOY.md line ${block.line}: expect=${name} but no background block named ${name} ran before it`);
      for (const [key, transcript] of targets) {
        const hospital = key.split('@')[1];
        const lines = block.body.split('\n').filter((l) => l.trim()).map((l) => substitute(l, hospital));
        // The first line must appear before the guide goes on (e.g. a site is connected before the next one starts).
        await transcript.expect(lines.slice(0, 1), `DEPLOY.md line ${block.line} (${key})`);
        pending.push(transcript.expect(lines, `DEPLOY.md line ${block.line} (${key})`));
      }
      continue;
    }
    if (block.lang !== 'sh' || check === undefined) continue;
    const role = block.attrs.role;
    const runs = role === 'hospital' ? HOSPITALS : ['coordinator'];
    if (index > lastBackground) await Promise.all(pending.splice(0)); // the federation has run; later steps read its results
    for (const who of runs) {
      const script = substitute(block.body, role === 'hospital' ? who : undefined);
      const home = homes[who];
      if (check.startsWith('background:')) {
        const name = check.slice('background:'.length);
        const key = role === 'hospital' ? `${name}@${who}` : name;
        // A person runs these in a terminal: `script` gives the command one, so it can ask for approval.
        const child = spawn('script', ['-qefc', `bash -eu -c ${shellQuote(script)}`, '/dev/null'], { cwd: home, env: env(home), stdio: ['pipe', 'pipe', 'pipe'], detached: true });
        const transcript = new Transcript(`${key} (DEPLOY.md line ${block.line})`, child);
        background.push(transcript);
        running.set(key, transcript);
        // A later block with this name needs the next block's first expected line first; find and wait for it there.
        const next = blocks.slice(index + 1).find((b) => b.lang === 'text' && b.attrs.expect === name);
        if (next && runs.length > 1) {
          await transcript.expect([substitute(next.body.split('\n').find((l) => l.trim())!, who)], `DEPLOY.md line ${next.line} (${key})`);
        }
        continue;
      }
      const result = spawnSync('bash', ['-eu', '-c', script], { cwd: home, env: env(home), encoding: 'utf8', timeout: WAIT_MS });
      assert.equal(result.status, 0, `DEPLOY.md line ${block.line} failed for ${who} (exit ${result.status}):\n${script}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`);
      previous = { name: `DEPLOY.md line ${block.line}`, output: result.stdout + result.stderr };
      if (who === 'coordinator') handOver();
    }
  }
  await Promise.all(pending);
  assert.ok(handedOver, 'the coordinator created a token file for each hospital');
  for (const h of HOSPITALS) {
    const site = running.get(`site@${h}`);
    assert.ok(site, `a site agent ran for ${h}`);
    await site.expect(['federation finished'], `${h} finished`);
    assert.equal(await site.waitExit(60_000), 0, `the site agent of ${h} exits with 0 once the federation is done:\n${site.output}`);
  }
  assert.ok(existsSync(join(homes.coordinator, 'fedseg-coordinator/global-round-1.fsm')), 'the global model was downloaded');
});

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
