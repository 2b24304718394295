// Browser test of the player's sound, settings and accessibility in a real Chromium: music by mood with a
// cross-fade (a story-shipped file taking precedence), sound effects (ambient and one-shot), voices requested per
// line while the narrator writes, volumes reaching the Web Audio gains, settings surviving a reload, keyboard
// focus and ARIA labels, text contrast over every backdrop. Saves screenshots to OUT_DIR (settings.png, scene.png).
// Usage: node audio_test.js FABULA_BINARY SOURCE_DIR OUT_DIR
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const [bin, src, outDir] = process.argv.slice(2);
const { chromium } = require(path.join(src, 'node_modules/playwright-core'));
const chromiumPath = '/usr/bin/chromium';
if (!fs.existsSync(chromiumPath)) { console.log('FAIL: no /usr/bin/chromium (scripts/setup installs it)'); process.exit(1); }

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fabula-audio-'));
let server = null, browser = null;
function cleanup() {
  if (server) server.kill('SIGKILL');
  fs.rmSync(tmp, { recursive: true, force: true });
}
function fail(msg) { console.error(`FAIL: ${msg}`); cleanup(); process.exit(1); }
function check(cond, msg) { if (!cond) fail(msg); console.log(`ok: ${msg}`); }

// A 1 s 330 Hz tone as 16-bit mono WAV: the story's own "tense" track, which must win over the generated one.
function toneWav() {
  const rate = 22050, n = rate, b = Buffer.alloc(44 + 2 * n);
  b.write('RIFF', 0); b.writeUInt32LE(36 + 2 * n, 4); b.write('WAVEfmt ', 8); b.writeUInt32LE(16, 16);
  b.writeUInt16LE(1, 20); b.writeUInt16LE(1, 22); b.writeUInt32LE(rate, 24); b.writeUInt32LE(rate * 2, 28);
  b.writeUInt16LE(2, 32); b.writeUInt16LE(16, 34); b.write('data', 36); b.writeUInt32LE(2 * n, 40);
  for (let i = 0; i < n; i++) b.writeInt16LE(Math.round(8000 * Math.sin(2 * Math.PI * 330 * i / rate)), 44 + 2 * i);
  return b;
}

// The demo story, copied with one shipped audio file.
function makeStory() {
  const dir = path.join(tmp, 'story');
  fs.cpSync(path.join(src, 'stories/sakuragaoka'), dir, { recursive: true });
  fs.mkdirSync(path.join(dir, 'audio'));
  fs.writeFileSync(path.join(dir, 'audio/tense.wav'), toneWav());
  const story = JSON.parse(fs.readFileSync(path.join(dir, 'story.json'), 'utf8'));
  story.audio = { music: { tense: 'audio/tense.wav' } };
  fs.writeFileSync(path.join(dir, 'story.json'), JSON.stringify(story, null, 2));
  return dir;
}

function startPlay(args) {
  return new Promise((resolve) => {
    const p = spawn(bin, ['play', ...args, '--port', '0', '--new', '--save', path.join(tmp, 'saves.sqlite')],
      { cwd: src, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; const m = out.match(/fabula play: (http:\/\/\S+)/); if (m) { server = p; resolve(m[1]); } });
    p.stderr.on('data', (d) => { err += d; });
    p.on('exit', (code) => { if (!server) { console.log(`fabula play exited ${code}: ${err.trim()}`); resolve(null); } });
  });
}

(async () => {
  const story = makeStory();
  const url = await startPlay(['--story', story, '--scripted', path.join(src, 'tests/data/engine/audio_fixture.jsonl'),
    '--scripted-delay-ms', '25']);
  if (!url) fail('fabula play did not start');
  console.log(`player at ${url}`);
  browser = await chromium.launchPersistentContext(path.join(tmp, 'profile'), {
    executablePath: chromiumPath, viewport: { width: 1280, height: 720 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required'],
  });
  const page = browser.pages()[0] || await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const voiceRequests = [];
  page.on('request', (r) => { if (r.url().includes('/api/voice')) voiceRequests.push(new URL(r.url()).searchParams.get('text')); });
  const audio = () => page.evaluate(() => window.FabulaAudio.state());
  const traceHas = (pred) => page.waitForFunction(pred, null, { timeout: 20000 });
  // Stage events play when the reader reaches them: read on (Space) until pred holds in the page.
  async function readUntil(pred, what) {
    for (let i = 0; i < 80; i++) {
      if (await page.evaluate(pred)) return;
      await page.keyboard.press('Space');
      await page.waitForTimeout(150);
    }
    fail(`reading on never reached: ${what}`);
  }

  await page.goto(url);
  await page.waitForSelector('#title-card:not(.hidden)', { timeout: 10000 });
  const story0 = await page.evaluate(() => window.fabula.story.voices);
  console.log(`voices: ${JSON.stringify(story0)}`);
  check(story0.available && story0.cast.length === 4 && story0.narration, 'the server offers a voice per cast member and for narration');

  // ---- settings panel, by keyboard only: O opens it, Tab reaches every control ----
  await page.keyboard.press('o');
  await page.waitForSelector('#panel:not(.hidden) input[data-setting=voices]');
  check(await page.evaluate(() => window.FabulaSettings.get('voices') === false), 'voices are off by default');
  const focusables = [];
  for (let i = 0; i < 14; i++) {
    await page.keyboard.press('Tab');
    focusables.push(await page.evaluate(() => document.activeElement.dataset.setting || document.activeElement.className || document.activeElement.tagName));
  }
  for (const k of ['textSpeed', 'autoDelay', 'music', 'musicMuted', 'sound', 'soundMuted', 'voice', 'voices'])
    check(focusables.includes(k), `settings control ${k} is reachable with Tab`);
  await page.focus('input[data-setting=voices]');
  await page.keyboard.press('Space');
  check(await page.evaluate(() => window.FabulaSettings.get('voices') === true), 'Space on the focused checkbox turns voices on');
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  check(outline !== 'none', `the focused control has a focus outline (${outline})`);
  fs.mkdirSync(outDir, { recursive: true });
  await page.screenshot({ path: path.join(outDir, 'settings.png') });
  await page.keyboard.press('Escape');

  // ---- play: music, effects, voices ----
  await page.click('#begin');
  await traceHas(() => window.FabulaAudio.trace.some((e) => e.kind === 'music' && e.name === 'calm'));
  let st = await audio();
  check(st.context === 'running', `the AudioContext runs (${st.context})`);
  check(st.trace.find((e) => e.kind === 'music').source === 'synth', 'calm has no file in the package: a generated piece');
  await page.waitForFunction(() => window.FabulaAudio.levels().music > 0.001, null, { timeout: 10000 });
  console.log(`music level: ${JSON.stringify(await page.evaluate(() => window.FabulaAudio.levels()))}`);
  check(true, 'the generated music is audible on the music bus');

  // The beat streams in; the music changes mid-beat, when the reader gets there.
  await readUntil(() => window.FabulaAudio.trace.some((e) => e.kind === 'music' && e.name === 'tense'), 'music tense');
  st = await audio();
  const tense = st.trace.find((e) => e.kind === 'music' && e.name === 'tense');
  check(tense.source === 'file', 'tense comes from the story package\'s own file');
  check(st.music && st.music.mood === 'tense', `the music is now tense (${JSON.stringify(st.music)})`);
  check(st.trace.some((e) => e.kind === 'music-fade' && e.name === 'calm'), 'calm cross-fades out');
  const rain = st.trace.find((e) => e.kind === 'sfx' && e.name === 'rain');
  check(rain && rain.ambient && st.ambient.includes('rain'), 'rain plays as an ambient loop');
  await readUntil(() => window.FabulaAudio.trace.some((e) => e.kind === 'sfx' && e.name === 'door_slide'), 'sfx door_slide');
  st = await audio();
  check(!st.trace.find((e) => e.name === 'door_slide').ambient && !st.ambient.includes('door_slide'), 'door_slide plays once');
  await page.waitForFunction(() => window.FabulaAudio.levels().sound > 0.001, null, { timeout: 10000 });
  check(true, 'the effects are audible on the sound bus');

  // Every line got its voice request while the beat was still being written.
  await page.waitForFunction(() => document.querySelector('#stage').dataset.status === 'idle' && document.querySelector('#stage').dataset.beat, null, { timeout: 30000 });
  const beat = await page.evaluate(() => window.fabula.snap.beat);
  const lines = beat.events.filter((e) => e.type === 'dialogue' || e.type === 'narration');
  st = await audio();
  const asked = st.trace.filter((e) => e.kind === 'voice-request');
  console.log(`beat ${beat.id}: ${lines.length} lines, ${asked.length} voice requests, ${asked.filter((e) => e.writing).length} while writing`);
  for (const l of lines) {
    const r = asked.find((e) => e.text === l.text);
    check(r && r.writing, `voice requested before the beat completed: ${l.speaker || 'narration'}: ${l.text.slice(0, 30)}`);
    check(voiceRequests.includes(l.text), `  and the request reached the network: ${l.text.slice(0, 30)}`);
  }
  await page.waitForFunction(() => window.FabulaAudio.trace.some((e) => e.kind === 'voice-play'), null, { timeout: 10000 });
  await page.waitForFunction(() => window.FabulaAudio.levels().voice > 0.001, null, { timeout: 10000 });
  check(true, 'the shown line\'s voice plays on the voice bus');
  // A backlog replay is served from the server's cache.
  const replay = await page.evaluate(async (l) => {
    const r = await fetch(window.FabulaAudio.voiceUrl(l), { cache: 'no-store' });  // past the browser's cache, to the server's
    const b = new Uint8Array(await r.arrayBuffer());
    return { cache: r.headers.get('X-Fabula-Voice-Cache'), type: r.headers.get('Content-Type'), riff: String.fromCharCode(...b.slice(0, 4)), bytes: b.length };
  }, lines.find((l) => l.type === 'dialogue'));
  console.log(`replay: ${JSON.stringify(replay)}`);
  check(replay.cache === 'hit' && replay.riff === 'RIFF' && replay.bytes > 44, 'replaying a line is a cache hit with a WAV body');

  // ---- volumes reach the gains ----
  await page.keyboard.press('o');
  await page.focus('input[data-setting=music]');
  for (let i = 0; i < 4; i++) await page.keyboard.press('ArrowLeft');  // 0.6 -> 0.4
  await page.focus('input[data-setting=soundMuted]');
  await page.keyboard.press('Space');
  await page.waitForFunction(() => { const g = window.FabulaAudio.state().gains; return Math.abs(g.music - 0.4) < 0.01 && g.sound < 0.01; }, null, { timeout: 5000 });
  st = await audio();
  console.log(`gains: ${JSON.stringify(st.gains)}`);
  check(Math.abs(st.gains.music - 0.4) < 0.01 && st.gains.sound < 0.01 && Math.abs(st.gains.voice - 1) < 0.01, 'music volume and sound mute change the bus gains');
  await page.keyboard.press('Escape');

  // ---- the next beat: a new place stops the rain, music none fades out ----
  for (let i = 0; i < 60 && !(await page.isVisible('#choices button')); i++) { await page.keyboard.press('Space'); await page.waitForTimeout(100); }
  await page.click('#choices button >> nth=0');
  await traceHas(() => window.FabulaAudio.trace.some((e) => e.kind === 'music' && e.name === 'none'));
  st = await audio();
  check(st.trace.some((e) => e.kind === 'sfx-stop' && e.name === 'rain') && !st.ambient.length, 'the scene change stops the rain');
  check(st.music === null && st.trace.some((e) => e.kind === 'music-fade' && e.name === 'tense'), 'music none fades the piece out');
  check(await page.isHidden('#music'), 'the music chip hides');

  // ---- accessibility: names, focus, contrast ----
  const unnamed = await page.evaluate(() => [...document.querySelectorAll('button, input')].filter((b) => b.offsetParent !== null)
    .filter((b) => !(b.getAttribute('aria-label') || b.textContent.trim() || (b.labels && b.labels.length))).map((b) => b.outerHTML));
  check(unnamed.length === 0, `every visible control has an accessible name ${unnamed.join(' ')}`);
  const quick = await page.evaluate(() => [...document.querySelectorAll('#quick button')].filter((b) => b.tabIndex < 0).length);
  check(quick === 0, 'every quick-menu button is in the tab order');
  // WCAG contrast of the text boxes' text over the brightest pixel of every backdrop under them.
  const contrast = await page.evaluate(async () => {
    const lum = ([r, g, b]) => { const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4); }; return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
    const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
    const rgba = (s) => s.match(/[\d.]+/g).map(Number);
    const over = (fg, bg) => { const a = fg.length > 3 ? fg[3] : 1; return [0, 1, 2].map((i) => fg[i] * a + bg[i] * (1 - a)); };
    // The darkest layer of a gradient is the one at the far end: take the lighter (first) stop, the worst case.
    const layerOf = (sel) => { const cs = getComputedStyle(document.querySelector(sel)); const m = cs.backgroundImage.match(/rgba?\([^)]*\)/g); return rgba(m ? m[0] : cs.backgroundColor); };
    const stageBox = document.querySelector('#stage').getBoundingClientRect();
    const boxes = { '#textbox': ['#line', '#textbox'], '#quick': ['#quick button', '#quick'] };
    const out = [];
    for (const loc of window.fabula.story.locations) {
      const img = new Image(); img.src = loc.backdrop; await img.decode();
      const c = document.createElement('canvas'); c.width = stageBox.width; c.height = stageBox.height;
      const g = c.getContext('2d'); g.drawImage(img, 0, 0, c.width, c.height);
      for (const [name, [textSel, bgSel]] of Object.entries(boxes)) {
        const r = document.querySelector(bgSel).getBoundingClientRect();
        const px = g.getImageData(r.left - stageBox.left, r.top - stageBox.top, r.width, r.height).data;
        let bright = [0, 0, 0], best = -1;
        for (let i = 0; i < px.length; i += 16) { const v = lum([px[i], px[i + 1], px[i + 2]]); if (v > best) { best = v; bright = [px[i], px[i + 1], px[i + 2]]; } }
        const text = rgba(getComputedStyle(document.querySelector(textSel)).color);
        const bg = over(layerOf(bgSel), bright);
        out.push({ loc: loc.id, box: name, ratio: +ratio(over(text, bg), bg).toFixed(2) });
      }
    }
    return out;
  });
  const worst = contrast.reduce((a, b) => (a.ratio < b.ratio ? a : b));
  console.log(`contrast over ${contrast.length / 2} backdrops, worst: ${JSON.stringify(worst)}`);
  check(worst.ratio >= 4.5, 'text keeps WCAG AA contrast (4.5:1) over every backdrop');

  // A scene with the music chip on, for the README.
  await page.evaluate(() => { window.FabulaAudio.trace.length = 0; });
  for (let i = 0; i < 40 && !(await page.isVisible('#choices button')); i++) { await page.keyboard.press('Space'); await page.waitForTimeout(100); }
  await page.click('#choices button >> nth=0');  // the fixture loops: beat 1 again, calm then tense
  await page.waitForFunction(() => !document.querySelector('#music').classList.contains('hidden'), null, { timeout: 20000 });
  await readUntil(() => !document.querySelector('#nameplate').classList.contains('hidden') && !document.querySelector('#ctc').classList.contains('hidden'), 'a finished dialogue line');
  await page.waitForTimeout(900);  // let the sprite transitions settle
  await page.screenshot({ path: path.join(outDir, 'scene.png') });

  // ---- settings survive a reload ----
  await page.reload();
  await page.waitForFunction(() => window.fabula.story && window.FabulaAudio.ctx, null, { timeout: 10000 });
  const kept = await page.evaluate(() => ({ s: window.FabulaSettings.values, g: window.FabulaAudio.state().gains }));
  console.log(`after reload: ${JSON.stringify(kept)}`);
  check(kept.s.voices === true && Math.abs(kept.s.music - 0.4) < 1e-9 && kept.s.soundMuted === true, 'settings survive a reload');
  await page.waitForFunction(() => Math.abs(window.FabulaAudio.state().gains.music - 0.4) < 0.01, null, { timeout: 5000 });
  check(true, 'and the reloaded player applies them to the gains');

  if (errors.length) fail(`page errors: ${errors.join('; ')}`);
  await browser.close();
  cleanup();
  console.log('PASS');
})().catch((e) => { console.error(e); if (browser) browser.close(); fail(String(e)); });
