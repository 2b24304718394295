// fabula web player: follows the game's SSE scene events and presents them one line at a time, like a visual novel.
'use strict';
(() => {
  const $ = (s) => document.querySelector(s);
  const PLATES = { Hana: '#e8543f', Ren: '#3d5a9e', Mio: '#c060a0', Kaito: '#d89412' };
  const el = {
    stage: $('#stage'), bgs: [...document.querySelectorAll('#backdrop img')], sprites: $('#sprites'),
    place: $('#place-card'), music: $('#music'), writing: $('#writing'), choices: $('#choices'),
    textbox: $('#textbox'), plate: $('#nameplate'), line: $('#line'), ctc: $('#ctc'), quick: $('#quick'),
    branch: $('#branch'), branchN: $('#branch-n'), panel: $('#panel'), toast: $('#toast'), title: $('#title-card'),
  };
  const ui = {
    story: null, snap: null, queue: [], current: null, typing: null, auto: false, skip: false,
    writing: false, log: [], bgIndex: 0, bgName: '', seq: 0, autoTimer: null, source: null,
  };
  window.fabula = ui;  // for tests and the curious
  // Sound and settings live in audio.js / settings.js; the player only calls these hooks.
  const audio = window.FabulaAudio, settings = window.FabulaSettings;

  // The link fabula play prints carries the launch token (#token=...): it is traded once for an HttpOnly cookie
  // that every later request (EventSource included) carries, and taken out of the address bar.
  const session = (() => {
    const token = new URLSearchParams(location.hash.slice(1)).get('token');
    if (!token) return Promise.resolve();
    window.history.replaceState(null, '', location.pathname + location.search);  // (history() is the backlog)
    return fetch('/api/session', { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Fabula-Token': token }, body: '{}' });
  })();
  const api = async (path, body) => {
    await session;
    const opt = body === undefined ? {} : { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) };
    const r = await fetch(path, opt);
    const j = await r.json().catch(() => ({}));
    if (!r.ok || j.ok === false) throw new Error(j.error || `${path}: HTTP ${r.status}`);
    return j;
  };
  const toast = (msg) => {
    el.toast.textContent = msg; el.toast.classList.remove('hidden');
    clearTimeout(toast.t); toast.t = setTimeout(() => el.toast.classList.add('hidden'), 3200);
  };
  const locName = (id) => (ui.story.locations.find((l) => l.id === id) || {}).name || id;
  const spriteUrl = (who, expr) => { const c = ui.story.cast.find((x) => x.name === who); return c ? c.sprites[expr] || c.sprites.neutral : ''; };

  // ---- stage ----
  function setBackground(name, transition) {
    const loc = ui.story.locations.find((l) => l.id === name);
    if (!loc || name === ui.bgName) return;
    ui.bgName = name;
    const next = el.bgs[1 - ui.bgIndex], cur = el.bgs[ui.bgIndex];
    next.className = 'bg ' + (transition || 'dissolve');
    next.src = loc.backdrop; next.alt = loc.name;
    requestAnimationFrame(() => { next.classList.add('on'); cur.classList.remove('on'); });
    ui.bgIndex = 1 - ui.bgIndex;
    el.stage.dataset.background = name;
    audio.stopAmbient();  // ambient sound belongs to the place
    el.place.classList.add('hidden'); void el.place.offsetWidth;
    el.place.textContent = loc.name; el.place.classList.remove('hidden');
  }
  function spriteEl(who) { return el.sprites.querySelector(`.sprite[data-character="${CSS.escape(who)}"]`); }
  function showSprite(who, expr, pos) {
    let s = spriteEl(who);
    const url = spriteUrl(who, expr);
    if (!s) {
      s = document.createElement('div');
      s.className = 'sprite'; s.dataset.character = who;
      const img = document.createElement('img'); img.src = url; img.alt = `${who} (${expr})`;
      s.appendChild(img); el.sprites.appendChild(s);
      requestAnimationFrame(() => s.classList.add('on'));
    } else if (s.dataset.expression !== expr) {
      // Cross-fade the new expression over the old one.
      const old = s.querySelector('img:last-child');
      const img = document.createElement('img'); img.src = url; img.alt = `${who} (${expr})`; img.className = 'old';
      s.appendChild(img);
      requestAnimationFrame(() => { img.classList.remove('old'); old.classList.add('old'); setTimeout(() => old.remove(), 400); });
    }
    s.classList.remove('left', 'center', 'right'); s.classList.add(pos || 'center');
    s.dataset.expression = expr; s.dataset.position = pos;
  }
  function hideSprite(who) {
    const s = spriteEl(who); if (!s) return;
    s.classList.remove('on'); s.dataset.leaving = '1'; setTimeout(() => s.remove(), 450);
  }
  function setMusic(track) {
    audio.playMusic(track);
    if (!track || track === 'none' || track === 'stop') { el.music.classList.add('hidden'); return; }
    el.music.textContent = `\u266A ${track}`; el.music.classList.remove('hidden');
  }
  function renderState(st) {
    if (!st) return;
    if (st.background) setBackground(st.background, 'cut');
    const keep = new Set((st.stage || []).map((s) => s.character));
    el.sprites.querySelectorAll('.sprite').forEach((s) => { if (!keep.has(s.dataset.character)) s.remove(); });
    (st.stage || []).forEach((s) => showSprite(s.character, s.expression, s.position));
    setMusic(st.music);
  }

  // ---- lines ----
  function showLine(ev) {
    clearTimeout(ui.autoTimer);
    ui.current = ev;
    const speaker = ev.type === 'dialogue' ? ev.speaker : '';
    if (speaker) {
      el.plate.textContent = speaker; el.plate.style.background = PLATES[speaker] || '#7a4ab0';
      el.plate.classList.remove('hidden');
    } else el.plate.classList.add('hidden');
    el.line.className = ev.type;
    el.sprites.querySelectorAll('.sprite').forEach((s) => {
      const me = s.dataset.character === speaker;
      s.classList.toggle('dim', !!speaker && !me);
      if (me) { s.classList.remove('speaking'); void s.offsetWidth; s.classList.add('speaking'); }
    });
    const text = ev.type === 'dialogue' ? `\u201C${ev.text}\u201D` : ev.text;
    el.ctc.classList.add('hidden');
    if (!ui.skip) audio.speak(ev); else audio.stopVoice();
    let i = 0;
    clearInterval(ui.typing);
    const done = () => { clearInterval(ui.typing); ui.typing = null; el.line.textContent = text; el.ctc.classList.remove('hidden'); scheduleAuto(); };
    const perChar = settings.typeDelay();
    if (ui.skip || perChar === 0) return done();
    const step = Math.max(1, Math.round(18 / perChar));  // characters per 18 ms tick
    ui.typing = setInterval(() => { i += step; el.line.textContent = text.slice(0, i); if (i >= text.length) done(); }, Math.max(18, perChar));
  }
  function scheduleAuto() {
    clearTimeout(ui.autoTimer);
    if (ui.skip) ui.autoTimer = setTimeout(advance, 60);
    else if (ui.auto) ui.autoTimer = setTimeout(advance, settings.get('autoDelay') + 28 * ((ui.current && ui.current.text) || '').length);
  }
  function showChoices(ev) {
    el.choices.innerHTML = '';
    if (ev.prompt) { const p = document.createElement('div'); p.className = 'prompt'; p.textContent = ev.prompt; el.choices.appendChild(p); }
    ev.choices.forEach((c, i) => {
      const b = document.createElement('button'); b.textContent = c; b.dataset.index = i;
      b.onclick = (e) => { e.stopPropagation(); choose(i, c); };
      el.choices.appendChild(b);
    });
    el.choices.classList.remove('hidden');
    ui.skip = false; syncButtons();
  }
  function hideChoices() { el.choices.classList.add('hidden'); el.choices.innerHTML = ''; }

  // ---- events: the one place that knows each type of docs/events.schema.json ----
  // Scene events (scene) are queued and played in order; a line or a set of choices pauses the queue until the
  // reader advances (scene returns true). Stream events (stream) act the moment they arrive. `line`: the reader
  // advances through it; `offer`: the choices it leaves the player with.
  const SCENE_END = { choices: ['Continue'], prompt: '\u2014 the scene ends \u2014' };
  const EVENTS = {
    narration: { line: true, scene: (ev) => { showLine(ev); return true; } },
    dialogue: { line: true, scene: (ev) => { showLine(ev); return true; } },
    background: { scene: (ev) => setBackground(ev.name, ev.transition) },
    sprite: { scene: (ev) => showSprite(ev.character, ev.expression, ev.position) },
    hide: { scene: (ev) => hideSprite(ev.character) },
    music: { scene: (ev) => setMusic(ev.track) },
    sfx: { scene: (ev) => { audio.playSound(ev.name); toast(`\u266B ${ev.name.replace(/_/g, ' ')}`); } },
    choices: { offer: (ev) => ev, scene: (ev) => { showChoices(ev); return true; } },
    end_scene: { offer: () => SCENE_END, scene: () => { audio.stopAmbient(); showChoices(SCENE_END); return true; } },
    beat_start: { stream: (ev) => {
      ui.writing = true; ui.awaiting = false; hideChoices(); ui.queue = [];
      if (ev.player_choice) ui.log.push({ type: 'choice', text: ev.player_choice });
      updateWriting();
    } },
    attempt: { stream: (ev) => {
      if (!ev.restart) return;
      ui.queue = []; ui.current = null; clearInterval(ui.typing); ui.typing = null; el.line.textContent = ''; el.plate.classList.add('hidden');
      renderState(ev.state); toast(`The narrator tries again (attempt ${ev.attempt})`);
    } },
    beat_end: { stream: () => { ui.writing = false; refreshSnapshot(); updateWriting(); } },
    error: { stream: (ev) => { ui.writing = false; updateWriting(); toast(ev.message); } },
    reset: { stream: () => { ui.writing = false; loadSnapshot(); } },
  };
  const handler = (ev) => (Object.hasOwn(EVENTS, ev.type) ? EVENTS[ev.type] : {});
  ui.events = EVENTS;  // the browser test checks these are the schema's types

  // Runs queued events up to and including the next line (stage changes apply immediately).
  function pump() {
    while (ui.queue.length) {
      const ev = ui.queue.shift();
      ui.log.push(ev);
      const h = handler(ev);
      if (h.scene && h.scene(ev)) return true;
    }
    updateWriting();
    return false;
  }
  function advance() {
    if (!el.panel.classList.contains('hidden') || !el.title.classList.contains('hidden')) return;
    if (ui.typing) { clearInterval(ui.typing); ui.typing = null; el.line.textContent = el.line.className === 'dialogue' ? `\u201C${ui.current.text}\u201D` : ui.current.text; el.ctc.classList.remove('hidden'); scheduleAuto(); return; }
    if (!el.choices.classList.contains('hidden')) return;
    // Nothing queued yet: show the next line the moment it arrives.
    if (!pump() && ui.writing) ui.awaiting = true;
  }
  function updateWriting() {
    const waiting = ui.writing && ui.queue.length === 0;
    el.writing.classList.toggle('hidden', !ui.writing);
    el.stage.dataset.status = ui.writing ? 'writing' : 'idle';
    if (waiting && el.choices.classList.contains('hidden') && !ui.typing && el.line.textContent === '') el.line.textContent = '';
  }

  // ---- events from the server ----
  function onEvent(ev) {
    const h = handler(ev);
    if (h.stream) return h.stream(ev);
    if (!h.scene) return;
    // A line is complete: its voice is requested now, while the narrator is still writing the next one.
    if (h.line) audio.prefetchVoice(ev);
    ui.queue.push(ev);
    // The first line of a beat appears at once, while the narrator is still writing.
    if (!ui.typing && !ui.current && el.choices.classList.contains('hidden')) pump();
    else if (!ui.typing && ui.awaiting) { ui.awaiting = false; if (!pump() && ui.writing) ui.awaiting = true; }
  }
  function connect(after) {
    if (ui.source) ui.source.close();
    ui.source = new EventSource(`/api/events?after=${after}`);
    ui.source.onmessage = (m) => { ui.seq = Number(m.lastEventId) || ui.seq; onEvent(JSON.parse(m.data)); };
    ui.source.onerror = () => { el.stage.dataset.connection = 'lost'; };
    ui.source.onopen = () => { el.stage.dataset.connection = 'ok'; };
  }

  async function refreshSnapshot() {
    ui.snap = await api('/api/state');
    const b = ui.snap.branches || { index: 0, count: 1 };
    el.branchN.textContent = `${b.index + 1}/${b.count}`;
    el.branch.classList.toggle('single', b.count < 2);
    el.stage.dataset.beat = ui.snap.beat ? ui.snap.beat.id : '';
  }
  // Shows the current beat's final stage, its last line and its choices (after load, rollback, branch switch).
  async function loadSnapshot() {
    await refreshSnapshot();
    hideChoices(); ui.queue = []; ui.current = null;
    ui.log = [];
    (ui.snap.path || []).forEach((b) => { if (b.player_choice) ui.log.push({ type: 'choice', text: b.player_choice, beat: b.parent_id }); ui.log.push(...b.events); });
    ui.writing = ui.snap.status === 'writing';
    const beat = ui.snap.beat;
    if (!beat) { renderState(ui.snap.initial_state); el.line.textContent = ''; updateWriting(); return; }
    renderState(beat.state);
    const lines = beat.events.filter((e) => handler(e).line);
    if (lines.length) { const keep = ui.skip; ui.skip = true; showLine(lines[lines.length - 1]); ui.skip = keep; }
    const ch = [...beat.events].reverse().find((e) => handler(e).offer);
    if (ch) showChoices(handler(ch).offer(ch));
    updateWriting();
  }

  async function choose(i, text) {
    hideChoices(); ui.current = null; el.line.textContent = ''; el.plate.classList.add('hidden');
    try { await api('/api/choose', { index: i }); } catch (e) { toast(e.message); loadSnapshot(); }
  }

  // ---- menus ----
  function panel(title, build) {
    el.panel.querySelector('h2').textContent = title;
    const body = el.panel.querySelector('.body'); body.innerHTML = '';
    build(body);
    // A modal dialog: focus moves in (and back out on close); Tab stays inside while it is open.
    if (el.panel.classList.contains('hidden')) ui.focusBefore = document.activeElement;
    el.panel.classList.remove('hidden');
    const first = body.querySelector('button, input, select, a[href]') || el.panel.querySelector('.close');
    first.focus({ preventScroll: true });
  }
  function closePanel() {
    // Nothing inside the closed panel may keep focus (Space would still toggle a hidden checkbox).
    if (el.panel.contains(document.activeElement)) document.activeElement.blur();
    el.panel.classList.add('hidden');
    const back = ui.focusBefore;
    if (back && back.focus && back.offsetParent !== null) back.focus({ preventScroll: true });
    ui.focusBefore = null;
  }
  function trapTab(e) {
    const items = [...el.panel.querySelectorAll('button, input, select, a[href]')].filter((x) => !x.disabled && x.offsetParent !== null);
    if (!items.length) return;
    const i = items.indexOf(document.activeElement);
    const next = e.shiftKey ? (i <= 0 ? items.length - 1 : i - 1) : (i < 0 || i === items.length - 1 ? 0 : i + 1);
    e.preventDefault(); items[next].focus({ preventScroll: true });
  }
  el.panel.querySelector('.close').onclick = () => closePanel();
  el.panel.onclick = (e) => { if (e.target === el.panel) closePanel(); };
  function history() {
    panel('History', (body) => {
      ui.log.filter((e) => handler(e).line || e.type === 'choice').forEach((e) => {
        const d = document.createElement('div'); d.className = `log-entry ${e.type}`;
        if (e.type === 'dialogue') { const w = document.createElement('span'); w.className = 'who'; w.style.color = PLATES[e.speaker] || '#c9a0ff'; w.textContent = e.speaker; d.appendChild(w); d.append(`\u201C${e.text}\u201D`); }
        else if (e.type === 'choice') {
          d.textContent = `\u25B8 ${e.text}`;
          if (e.beat) { const j = document.createElement('button'); j.className = 'jump'; j.textContent = 'roll back here'; j.onclick = () => rollback(e.beat); d.appendChild(j); }
        } else d.textContent = e.text;
        if (audio.voiceFor(e)) { const r = document.createElement('button'); r.className = 'replay'; r.textContent = '\u25B6'; r.setAttribute('aria-label', `Replay the voice: ${e.text.slice(0, 40)}`); r.onclick = () => audio.speak(e, true); d.prepend(r); }
        body.appendChild(d);
      });
      body.scrollTop = body.scrollHeight;
    });
  }
  async function rollback(beatId) {
    el.panel.classList.add('hidden');
    try { await api('/api/rollback', { beat_id: beatId }); } catch (e) { toast(e.message); }
  }
  function slots(load) {
    panel(load ? 'Load' : 'Save', (body) => {
      const list = ui.snap.slots || [];
      if (!load) {
        const d = document.createElement('div'); d.className = 'slot';
        d.innerHTML = `<span>New slot</span>`;
        const b = document.createElement('button'); b.textContent = 'Save here';
        b.onclick = async () => { const name = `Slot ${list.length + 1} \u00B7 ${new Date().toLocaleTimeString()}`; try { await api('/api/save', { name }); toast(`Saved: ${name}`); await refreshSnapshot(); el.panel.classList.add('hidden'); } catch (e) { toast(e.message); } };
        d.appendChild(b); body.appendChild(d);
      }
      if (!list.length && load) body.textContent = 'No saves yet. Every beat is also saved automatically: close the player and come back to resume.';
      list.slice().reverse().forEach((s) => {
        const d = document.createElement('div'); d.className = 'slot';
        const label = document.createElement('span'); label.textContent = `${s.name} (beat ${s.beat_id})`; d.appendChild(label);
        if (load) { const b = document.createElement('button'); b.textContent = 'Load'; b.onclick = async () => { el.panel.classList.add('hidden'); try { await api('/api/load', { name: s.name }); } catch (e) { toast(e.message); } }; d.appendChild(b); }
        body.appendChild(d);
      });
    });
  }
  function openSettings() {
    panel('Settings', (body) => settings.render(body, !!(ui.story.voices && ui.story.voices.available)));
  }
  function menu() {
    panel('Menu', (body) => {
      const item = (label, btn, fn) => { const d = document.createElement('div'); d.className = 'menu-item'; const s = document.createElement('span'); s.textContent = label; const b = document.createElement('button'); b.textContent = btn; b.onclick = fn; d.append(s, b); body.appendChild(d); };
      item(`${ui.story.title} \u2014 narrator: ${ui.snap.narrator}`, 'Close', () => el.panel.classList.add('hidden'));
      item('Export this session as JSON', 'Export', () => { window.location = '/api/export'; });
      item('Import a session from JSON', 'Import', () => $('#import-file').click());
      item('Start a new game', 'New game', async () => { el.panel.classList.add('hidden'); try { await api('/api/new', {}); await api('/api/start', {}); } catch (e) { toast(e.message); } });
    });
  }
  $('#import-file').onchange = async (e) => {
    const f = e.target.files[0]; if (!f) return;
    try { const r = await fetch('/api/import', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: await f.text() }); const j = await r.json(); if (!j.ok) throw new Error(j.error); toast('Imported'); el.panel.classList.add('hidden'); }
    catch (err) { toast(err.message); }
  };
  function syncButtons() {
    el.quick.querySelector('[data-act=auto]').classList.toggle('active', ui.auto);
    el.quick.querySelector('[data-act=skip]').classList.toggle('active', ui.skip);
  }
  el.quick.onclick = async (e) => {
    e.stopPropagation();
    const act = e.target.dataset && e.target.dataset.act; if (!act) return;
    try {
      if (act === 'history') history();
      else if (act === 'auto') { ui.auto = !ui.auto; syncButtons(); if (ui.auto && !ui.typing) scheduleAuto(); }
      else if (act === 'skip') { ui.skip = !ui.skip; syncButtons(); if (ui.skip) advance(); }
      else if (act === 'save') { await refreshSnapshot(); slots(false); }
      else if (act === 'load') { await refreshSnapshot(); slots(true); }
      else if (act === 'menu') menu();
      else if (act === 'settings') openSettings();
      else if (act === 'regen') { hideChoices(); ui.current = null; el.line.textContent = ''; await api('/api/regenerate', {}); }
      else if (act === 'back') { await refreshSnapshot(); const b = ui.snap.beat; if (b && b.parent_id) await rollback(b.parent_id); else toast('This is the first beat'); }
      else if (act === 'prev' || act === 'next') await api('/api/branch', { offset: act === 'next' ? 1 : -1 });
    } catch (err) { toast(err.message); }
  };
  // The stage never scrolls (focus or scrollIntoView could shift it: sprites overflow its bottom on purpose).
  el.stage.addEventListener('scroll', () => { el.stage.scrollTop = 0; el.stage.scrollLeft = 0; });
  el.textbox.onclick = () => advance();
  el.stage.addEventListener('click', (e) => { if (e.target === el.stage || e.target.closest('#sprites') || e.target.closest('#backdrop')) advance(); });
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') { if (!el.panel.classList.contains('hidden')) closePanel(); return; }
    if (!el.panel.classList.contains('hidden')) { if (e.key === 'Tab') trapTab(e); return; }
    // A focused control keeps Space/Enter for itself (keyboard users press buttons that way).
    const control = e.target.closest && e.target.closest('button, input, select, textarea, a');
    if ((e.key === ' ' || e.key === 'Enter') && control && control.offsetParent !== null) return;
    if (control && control.offsetParent !== null && control.matches('input, select, textarea')) return;
    if (e.key === ' ' || e.key === 'Enter') { e.preventDefault(); if (!el.title.classList.contains('hidden')) $('#begin').click(); else advance(); }
    else if (e.key === 'h' || e.key === 'H') history();
    else if (e.key === 'a' || e.key === 'A') el.quick.querySelector('[data-act=auto]').click();
    else if (e.key === 's' || e.key === 'S') el.quick.querySelector('[data-act=skip]').click();
    else if (e.key === 'o' || e.key === 'O') openSettings();
    else if (e.key === 'm' || e.key === 'M') { settings.toggleMuteAll(); toast(settings.allMuted() ? 'Sound muted' : 'Sound on'); }
    else if (e.key === 'v' || e.key === 'V') { settings.set('voices', !settings.get('voices')); toast(`Voices ${settings.get('voices') ? 'on' : 'off'}`); }
    else if ((e.key === 'r' || e.key === 'R') && ui.current) audio.speak(ui.current, true);
    else if (/^[1-4]$/.test(e.key)) { const b = el.choices.querySelectorAll('button')[Number(e.key) - 1]; if (b && !el.choices.classList.contains('hidden')) b.click(); }
  });

  // ---- start ----
  (async () => {
    try {
      ui.story = await api('/api/story');
      audio.init({ story: ui.story, isWriting: () => ui.writing });
      settings.onChange((v) => { audio.setVolumes(settings.volumes()); audio.voicesOn = v.voices; audio.narration = v.narrationVoice; });
      document.title = `${ui.story.title} \u2014 fabula`;
      await loadSnapshot();
      connect(ui.snap.seq);
      if (!ui.snap.beat && ui.snap.status !== 'writing') {
        el.title.querySelector('h1').textContent = ui.story.title;
        el.title.querySelector('p').textContent = ui.story.premise;
        el.title.classList.remove('hidden');
        $('#begin').onclick = async (e) => { e && e.stopPropagation(); el.title.classList.add('hidden'); try { await api('/api/start', {}); } catch (err) { toast(err.message); } };
      }
    } catch (e) { toast(e.message); }
  })();
})();
