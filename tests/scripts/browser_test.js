// Browser test of the web player: start `fabula play`, see that the player needs the link's token, see a backdrop
// and a sprite, read lines, pick a choice, see the next beat, roll back; then the several-players mode (listening on
// every interface with an access key, --players 2): two browsers play a turn at once, each in their own game.
// Saves a screenshot to OUT_DIR/player.png.
// Usage: node browser_test.js FABULA_BINARY SOURCE_DIR OUT_DIR
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const [bin, src, outDir] = process.argv.slice(2);
const { chromium } = require(path.join(src, 'node_modules/playwright-core'));
const chromiumPath = '/usr/bin/chromium';
if (!fs.existsSync(chromiumPath)) { console.log('FAIL: no /usr/bin/chromium (scripts/setup installs it)'); process.exit(1); }

function fail(msg) { console.error(`FAIL: ${msg}`); cleanup(); process.exit(1); }
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fabula-browser-'));
let server = null, browser = null;
function cleanup() {
  if (server) server.kill('SIGKILL');
  fs.rmSync(tmp, { recursive: true, force: true });
}

// Starts fabula play with the given narrator arguments; resolves to the URL it prints (or null if it exits).
function startPlay(narratorArgs, extraArgs = []) {
  return new Promise((resolve) => {
    const args = ['play', ...narratorArgs, '--port', '0', '--new', '--save', path.join(tmp, 'saves.sqlite'), ...extraArgs];
    const p = spawn(bin, args, { cwd: src, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/fabula play: (http:\/\/\S+)/);
      if (m) { server = p; resolve(m[1]); }
    });
    p.stderr.on('data', (d) => { err += d; });
    p.on('exit', (code) => { if (!server) { console.log(`fabula play ${narratorArgs.join(' ')} exited ${code}: ${err.trim()}`); resolve(null); } });
  });
}

(async () => {
  // The demo narrator when it is available, else the scripted fixture.
  let url = null, narrator = 'demo', narratorArgs = [];
  if (fs.existsSync(path.join(src, 'models/fabula-demo-v1.gguf'))) url = await startPlay(narratorArgs);
  if (!url) {
    narrator = 'scripted';
    narratorArgs = ['--scripted', path.join(src, 'tests/data/engine/play_fixture.jsonl'), '--scripted-delay-ms', '15'];
    url = await startPlay(narratorArgs);
  }
  if (!url) fail('fabula play did not start');
  console.log(`player at ${url} (narrator: ${narrator})`);

  // A fresh profile directory per run (playwright passes it as --user-data-dir).
  browser = await chromium.launchPersistentContext(path.join(tmp, 'profile'), {
    executablePath: chromiumPath, viewport: { width: 1280, height: 720 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const page = browser.pages()[0] || await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  // Without the link's token (another page, another user) the player is refused and says where the link is.
  if (!/#token=[0-9a-f]{64}$/.test(url)) fail(`the printed link carries no token: ${url}`);
  await page.goto(url.replace(/#.*$/, ''));
  await page.waitForFunction(() => !document.querySelector('#toast').classList.contains('hidden'), null, { timeout: 10000 });
  const refusal = await page.textContent('#toast');
  console.log(`without the token: ${refusal}`);
  if (!refusal.includes('#token=')) fail(`a player without the token should be told about the link, got: ${refusal}`);
  if (await page.isVisible('#title-card')) fail('the title card showed without the token');

  await page.goto(url);
  await page.waitForSelector('#title-card:not(.hidden)', { timeout: 10000 });
  // The token left the address bar and lives in a cookie that scripts cannot read.
  const token = url.split('#token=')[1];
  if (page.url().includes(token)) fail(`the token stayed in the address bar: ${page.url()}`);
  if ((await page.evaluate(() => document.cookie)).includes(token)) fail('the token cookie is readable by scripts');
  // player.js handles exactly the event types of docs/events.schema.json.
  const schema = JSON.parse(fs.readFileSync(path.join(src, 'docs/events.schema.json'), 'utf8'));
  const schemaTypes = Object.values(schema.$defs).map((d) => d.properties && d.properties.type && d.properties.type.const)
    .filter(Boolean).sort();
  const handled = await page.evaluate(() => Object.keys(window.fabula.events).sort());
  if (schemaTypes.length < 14 || JSON.stringify(handled) !== JSON.stringify(schemaTypes))
    fail(`player.js handles [${handled}] but docs/events.schema.json defines [${schemaTypes}]`);
  await page.click('#begin');

  // The first line appears while the narrator is still writing.
  await page.waitForFunction(() => document.querySelector('#line').textContent.length > 0, null, { timeout: 60000 });
  const firstWhileWriting = await page.evaluate(() => document.querySelector('#stage').dataset.status === 'writing');
  console.log(`first line shown while writing: ${firstWhileWriting}`);
  if (narrator === 'scripted' && !firstWhileWriting) fail('the first line waited for the whole beat');

  // A backdrop image and a sprite image, both loaded.
  const bg = await page.waitForFunction(() => {
    const img = document.querySelector('#backdrop img.on');
    return img && img.complete && img.naturalWidth > 0 && img.getAttribute('src');
  }, null, { timeout: 30000 });
  console.log(`backdrop: ${await bg.jsonValue()}`);
  const sprite = await page.waitForFunction(() => {
    const img = document.querySelector('.sprite.on img');
    return img && img.complete && img.naturalWidth > 0 && img.getAttribute('src');
  }, null, { timeout: 30000 });
  console.log(`sprite: ${await sprite.jsonValue()}`);

  // Advance line by line until the choices appear.
  async function advanceToChoices() {
    for (let i = 0; i < 200; i++) {
      if (await page.isVisible('#choices button')) return;
      await page.keyboard.press('Space');
      await page.waitForTimeout(120);
    }
    fail('no choices appeared');
  }
  await advanceToChoices();
  const beat1 = await page.evaluate(() => document.querySelector('#stage').dataset.beat);
  const choices = await page.$$eval('#choices button', (bs) => bs.map((b) => b.textContent));
  console.log(`beat ${beat1} choices: ${JSON.stringify(choices)}`);
  if (choices.length < 1) fail('no choice buttons');
  const history = await page.evaluate(() => window.fabula.log.filter((e) => e.type === 'dialogue').length);
  if (history < 1) fail('no dialogue in the backlog');

  // Pick the first choice and see the next beat.
  await page.click('#choices button >> nth=0');
  await page.waitForFunction((b) => { const s = document.querySelector('#stage'); return s.dataset.beat && s.dataset.beat !== b; },
    beat1, { timeout: 60000 });
  const beat2 = await page.evaluate(() => document.querySelector('#stage').dataset.beat);
  console.log(`next beat: ${beat2}`);
  // Show a dialogue line of the new beat with its name plate for the screenshot.
  for (let i = 0; i < 40; i++) {
    const named = await page.evaluate(() => !document.querySelector('#nameplate').classList.contains('hidden') &&
      !document.querySelector('#ctc').classList.contains('hidden'));
    if (named) break;
    await page.keyboard.press('Space');
    await page.waitForTimeout(150);
  }
  await page.waitForTimeout(600);  // let transitions settle
  const stage = await page.evaluate(() => ({
    background: document.querySelector('#stage').dataset.background,
    sprites: [...document.querySelectorAll('.sprite.on')].map((s) => `${s.dataset.character}:${s.dataset.expression}@${s.dataset.position}`),
    speaker: document.querySelector('#nameplate').textContent,
    line: document.querySelector('#line').textContent,
  }));
  console.log(`stage: ${JSON.stringify(stage)}`);
  if (!stage.sprites.length) fail('no sprite on stage in beat 2');
  fs.mkdirSync(outDir, { recursive: true });
  const shot = path.join(outDir, 'player.png');
  await page.screenshot({ path: shot });
  console.log(`screenshot: ${shot}`);

  // Roll back to the first beat: its choices come back.
  await advanceToChoices();
  await page.click('#quick [data-act=back]');
  await page.waitForFunction((b) => document.querySelector('#stage').dataset.beat === b, beat1, { timeout: 10000 });
  await page.waitForSelector('#choices button', { timeout: 10000 });
  console.log(`rolled back to beat ${beat1}`);
  if (errors.length) fail(`page errors: ${errors.join('; ')}`);

  // Several players: listening on every interface takes an access key, which the players' link carries; with
  // --players 2 two browsers (two profiles: two players) play at once, each in their own game, on one narrator.
  server.kill('SIGKILL');
  server = null;
  const key = 'several-players-key';
  const lanUrl = await startPlay(narratorArgs, ['--host', '0.0.0.0', '--access-key', key, '--players', '2']);
  if (!lanUrl) fail('fabula play --host 0.0.0.0 --access-key --players 2 did not start');
  if (!lanUrl.endsWith(`#token=${key}`)) fail(`the several-players link does not carry the key: ${lanUrl}`);
  const second = await chromium.launchPersistentContext(path.join(tmp, 'profile2'), {
    executablePath: chromiumPath, viewport: { width: 1280, height: 720 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const guests = [await browser.newPage(), second.pages()[0] || await second.newPage()];
  for (const g of guests) g.on('pageerror', (e) => errors.push(String(e)));
  await Promise.all(guests.map(async (g) => {
    await g.goto(lanUrl);
    await g.waitForSelector('#title-card:not(.hidden)', { timeout: 10000 });
  }));
  await Promise.all(guests.map((g) => g.click('#begin')));
  await Promise.all(guests.map((g) => g.waitForFunction(() => document.querySelector('#line').textContent.length > 0,
    null, { timeout: 60000 })));
  // Each browser got its own player id (an HttpOnly cookie) and its own game.
  const ids = await Promise.all([browser, second].map(async (ctx) =>
    ((await ctx.cookies()).find((c) => c.name.endsWith('_player')) || {}).value));
  console.log(`several players: ${lanUrl.replace(key, '<key>')}; player ids ${ids.map((i) => (i || '').slice(0, 8))}`);
  if (!ids[0] || !ids[1] || ids[0] === ids[1]) fail(`the two browsers share a player id: ${ids}`);
  // Both play a turn at once; each sees only its own beats.
  async function advance(g) {
    for (let i = 0; i < 200; i++) {
      if (await g.isVisible('#choices button')) return;
      await g.keyboard.press('Space');
      await g.waitForTimeout(120);
    }
    fail('no choices appeared for a player');
  }
  await Promise.all(guests.map(advance));
  const firstBeats = await Promise.all(guests.map((g) => g.evaluate(() => document.querySelector('#stage').dataset.beat)));
  await Promise.all(guests.map((g) => g.click('#choices button >> nth=0')));
  await Promise.all(guests.map((g, i) => g.waitForFunction((b) => {
    const s = document.querySelector('#stage'); return s.dataset.beat && s.dataset.beat !== b;
  }, firstBeats[i], { timeout: 60000 })));
  const trees = await Promise.all(guests.map((g) => g.evaluate(async () => (await (await fetch('/api/tree')).json()))));
  const sessions = await Promise.all(guests.map((g) => g.evaluate(async () => (await (await fetch('/api/state')).json()).session)));
  console.log(`several players: beats per player ${trees.map((t) => t.length)}, sessions ${JSON.stringify(sessions)}`);
  if (trees.some((t) => t.length !== 2)) fail(`each player should hold exactly their own 2 beats: ${JSON.stringify(trees)}`);
  if (errors.length) fail(`page errors: ${errors.join('; ')}`);
  await second.close();
  await browser.close();
  cleanup();
  console.log('PASS');
})().catch((e) => { console.error(e); if (browser) browser.close(); fail(String(e)); });
